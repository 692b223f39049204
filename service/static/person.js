// A person's page (#person/E042): their templates with where each face came from, removing one, renaming, the
// enrolment strength, the audit trail and their recent access events. Uses app.js's globals (api, el, toast,
// confirmed, faceImage, eventRow, clock, state); text only through textContent, never parsed as HTML.
"use strict";

const PERSON_EVENTS = 10; // recent access events shown on a person's page

function personPath(employeeId) {
  return `/api/people/${encodeURIComponent(employeeId)}`;
}

function strengthBadge(person) {
  const strength = person.strength;
  if (!strength) return null;
  return strength.weak
    ? el("span", { class: "pill weak strength", text: "weak", title: strength.reasons.join("\n") })
    : el("span", { class: "pill granted strength", text: "strong", title: "their faces agree and nobody else comes close" });
}

function originText(template) {
  if (template.origin === "capture") return "door camera capture";
  if (template.origin === "event") return template.event_id != null ? `confirmed door event #${template.event_id}` : "confirmed door event";
  return `photo ${template.source}`;
}

function originNode(template, employeeId) {
  if (template.origin !== "event") return el("div", { class: "detail", text: originText(template) });
  const showEvents = (click) => {
    click.preventDefault();
    $("#events-person").value = employeeId; // the events list, filtered to this person
    state.seen = null;
    location.hash = "#events";
  };
  return el("div", { class: "detail" }, el("a", { href: "#events", text: originText(template), onclick: showEvents }));
}

function templateCard(person, template) {
  const admin = state.me.role === "admin";
  const face = template.has_crop
    ? faceImage(`${personPath(person.employee_id)}/templates/${template.id}/face`, `template ${template.id}`)
    : el("div", { class: "face", text: "no face" });
  const remove = admin
    ? el("button", { class: "danger small", type: "button", text: "Remove", onclick: () => removeTemplate(person, template) })
    : null;
  return el(
    "li",
    { class: "template", "data-template": String(template.id), "data-origin": template.origin },
    face,
    el(
      "div",
      {},
      originNode(template, person.employee_id),
      el("div", { class: "detail", text: `${clock(template.created_at)} · ${template.model_id} · quality ${template.quality.toFixed(3)}` }),
      remove,
    ),
  );
}

function strengthLines(strength) {
  if (!strength) return [];
  const own = strength.own_worst == null ? "not known (one template)" : `worst pair ${strength.own_worst.toFixed(3)}, median ${strength.own_median.toFixed(3)}`;
  const near = strength.nearest_id == null ? "nobody" : `${named(strength.nearest_id)} at ${strength.nearest_score.toFixed(3)}`;
  const lines = [el("li", { text: `Their own templates agree: ${own}` }), el("li", { text: `Nearest other person: ${near}` })];
  return [...lines, ...strength.reasons.map((reason) => el("li", { class: "reason", text: `Weak: ${reason}` }))];
}

function renameForm(person) {
  if (state.me.role !== "admin") return null;
  const input = el("input", { name: "name", value: person.name, maxlength: "200", required: true, "aria-label": "name" });
  const submit = async (event) => {
    event.preventDefault();
    try {
      const done = await api(personPath(person.employee_id), {
        method: "PATCH",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: input.value }),
      });
      toast(`${done.employee_id} is now ${done.name}`);
      await loadNames();
    } catch (error) {
      toast(error.message);
    }
    await showPerson(person.employee_id);
  };
  return el("form", { class: "filters rename", onsubmit: submit }, input, el("button", { type: "submit", text: "Rename" }));
}

function auditRow(entry) {
  return el("tr", {}, el("td", { text: clock(entry.time) }), el("td", { text: entry.action }), el("td", { text: entry.actor }), el("td", { text: entry.detail }));
}

function personView(person, events) {
  const status = person.active ? el("span", { class: "pill granted", text: "active" }) : el("span", { class: "pill off", text: "deactivated" });
  const audit = el("table", { class: "outcomes audit" }, el("thead", {}, el("tr", {}, ...["When", "Change", "By", "Detail"].map((t) => el("th", { text: t })))), el("tbody", {}, ...person.audit.map(auditRow)));
  return [
    el("p", {}, el("a", { href: "#people", text: "← People" })),
    el(
      "header",
      { class: "person-head" },
      faceImage(`${personPath(person.employee_id)}/face?v=${person.templates.length}`, person.name),
      el("div", {}, el("h1", { id: "person-name", text: person.name }), el("div", { class: "detail" }, `${person.employee_id} · `, status, " ", strengthBadge(person))),
    ),
    renameForm(person),
    el("h2", { text: "Enrolment strength" }),
    el("ul", { id: "person-strength", class: "strength-lines" }, ...strengthLines(person.strength)),
    el("h2", { text: `Templates (${person.templates.length})` }),
    el("ul", { id: "person-templates", class: "grid templates" }, ...person.templates.map((t) => templateCard(person, t))),
    el("h2", { text: "Recent access events" }),
    events.length ? el("ol", { class: "rows" }, ...events.map((event) => eventRow(event, false))) : el("p", { class: "muted", text: "No access events of theirs yet." }),
    el("h2", { text: "Changes" }),
    person.audit.length ? audit : el("p", { class: "muted", text: "No changes recorded." }),
  ];
}

async function showPerson(employeeId) {
  const page = $("#view-person");
  // coming from another view or person: what was drawn before is not shown while this one loads
  if (state.view !== "person" || page.dataset.id !== employeeId) page.replaceChildren(el("p", { class: "muted", text: "Loading…" }));
  page.dataset.id = employeeId;
  state.view = "person";
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== "view-person";
  for (const link of document.querySelectorAll("#tabs a")) link.classList.toggle("current", link.dataset.view === "people");
  try {
    const query = new URLSearchParams({ person: employeeId, limit: String(PERSON_EVENTS) });
    const [person, events] = await Promise.all([api(personPath(employeeId)), api(`/api/events?${query}`)]);
    if (state.view === "person") page.replaceChildren(...personView(person, events.events).filter((node) => node != null));
  } catch (error) {
    page.replaceChildren(el("p", {}, el("a", { href: "#people", text: "← People" })), el("p", { class: "error", text: error.message }));
  }
}

async function removeTemplate(person, template) {
  const question = `Remove template ${template.id} of ${person.name} (${originText(template)})? No gate will match this face of theirs.`;
  if (!(await confirmed(question, "Remove"))) return;
  try {
    await api(`${personPath(person.employee_id)}/templates/${template.id}`, { method: "DELETE" });
    toast(`Template ${template.id} removed`);
  } catch (error) {
    toast(error.message);
  }
  await showPerson(person.employee_id);
}
