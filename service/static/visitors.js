// The Visitors view (admins only): the door's unknown visitors, recent denied faces that matched nobody, grouped by
// who they look like; each group a row of face thumbnails, enrolled as a new person ("Enrol…") or dismissed.
// Loaded after app.js: it adds its tab and view, wraps app.js's show() and uses its api(), el(), toast(),
// confirmed(), faceImage(), ago(), clock(), state. Names and ids are set with textContent only.
"use strict";

const MAX_THUMBNAILS = 12; // faces shown per group; the rest are counted

VIEWS.push("visitors");

const counted = (count, noun) => `${count} ${noun}${count === 1 ? "" : "s"}`;

function visitorsView() {
  const tab = el("a", { href: "#visitors", "data-view": "visitors", class: "admin-only", text: "Visitors", hidden: true });
  $("#tabs").append(tab);
  const section = el(
    "section",
    { id: "view-visitors", class: "view", hidden: true },
    el(
      "div",
      { class: "heading" },
      el("h1", { text: "Unknown visitors" }),
      el("span", { class: "muted", id: "visitors-note" }),
      el("button", { type: "button", class: "quiet small", id: "visitors-refresh", text: "Refresh", onclick: () => refreshVisitors() }),
    ),
    el("ul", { id: "visitors-list", class: "rows" }),
    el("p", { id: "visitors-empty", class: "muted", hidden: true, text: "No unknown visitors: every recent denied face was dismissed, enrolled or confirmed." }),
  );
  $("main").append(section);
}

function visitorGroupRow(group, number) {
  const faces = group.event_uids.slice(0, MAX_THUMBNAILS).map((uid, i) =>
    uid ? faceImage(`/api/events/${encodeURIComponent(uid)}/face`, `face of event ${group.event_ids[i]}`) : el("div", { class: "face", text: "no face" }),
  );
  if (group.size > MAX_THUMBNAILS) faces.push(el("div", { class: "face", text: `+${group.size - MAX_THUMBNAILS}` }));
  const gates = [...new Set(group.gates)].sort().join(", ");
  const seen = group.size === 1 ? `seen ${clock(group.last_seen)}` : `seen ${group.size} times, first ${clock(group.first_seen)}, last ${ago(group.last_seen)}`;
  return el(
    "li",
    { class: "visitor", "data-group": String(number), "data-events": group.event_ids.join(" ") },
    el("div", { class: "visitor-faces" }, ...faces),
    el(
      "div",
      { class: "visitor-info" },
      el("div", {}, el("span", { class: "pill denied", text: `${group.size}` }), el("span", { class: "who", text: `Visitor ${number}` })),
      el("div", { class: "detail", text: `${seen} · at ${gates}` }),
    ),
    el(
      "div",
      { class: "actions" },
      el("button", { type: "button", class: "small", text: "Enrol…", onclick: () => askVisitorIdentity(group) }),
      el("button", { type: "button", class: "quiet small", text: "Dismiss", onclick: () => dismissVisitor(group) }),
    ),
  );
}

async function refreshVisitors() {
  if (!state.me || state.me.role !== "admin") return;
  $("#visitors-note").textContent = "grouping…";
  try {
    const body = await api("/api/visitors");
    $("#visitors-list").replaceChildren(...body.groups.map((group, i) => visitorGroupRow(group, i + 1)));
    $("#visitors-empty").hidden = body.groups.length > 0;
    const faces = body.groups.reduce((total, group) => total + group.size, 0);
    $("#visitors-note").textContent = `${counted(faces, "face")} of the last ${body.days} days in ${counted(body.groups.length, "group")}`;
  } catch (error) {
    $("#visitors-note").textContent = "";
    toast(error.message);
  }
}

async function dismissVisitor(group) {
  const faces = group.size === 1 ? "this face" : `these ${group.size} faces`;
  if (!(await confirmed(`Dismiss ${faces}? They leave the unknown visitors; the access log keeps the events.`, "Dismiss"))) return;
  try {
    const done = await api("/api/visitors/dismiss", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ event_ids: group.event_ids }),
    });
    toast(`${counted(done.dismissed, "face")} dismissed.`);
  } catch (error) {
    toast(error.message);
  }
  refreshVisitors();
}

function visitorDialog() {
  let dialog = $("#enrol-visitor");
  if (dialog) return dialog;
  dialog = el(
    "dialog",
    { id: "enrol-visitor" },
    el(
      "form",
      { method: "dialog" },
      el("p", { id: "enrol-visitor-text" }),
      el("div", { id: "enrol-visitor-face" }),
      el("label", { text: "Employee id" }, el("input", { name: "employee_id", required: true, maxlength: "64", autocomplete: "off" })),
      el("label", { text: "Name" }, el("input", { name: "name", required: true, maxlength: "200", autocomplete: "off" })),
      el(
        "div",
        { class: "actions" },
        el("button", { value: "cancel", class: "quiet", formnovalidate: true, text: "Cancel" }),
        el("button", { value: "ok", id: "enrol-visitor-ok", text: "Enrol" }),
      ),
    ),
  );
  document.body.append(dialog);
  return dialog;
}

function askVisitorIdentity(group) {
  const dialog = visitorDialog();
  const [idInput, nameInput] = dialog.querySelectorAll("input");
  $("#enrol-visitor-text").textContent = `Enrol this visitor as a new person from their ${group.size} faces at the door (checked as photos are).`;
  const uid = group.representative_uid;
  $("#enrol-visitor-face").replaceChildren(uid ? faceImage(`/api/events/${encodeURIComponent(uid)}/face`, "the visitor's face") : el("div"));
  idInput.value = "";
  nameInput.value = "";
  dialog.showModal();
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "ok" && idInput.value.trim() && nameInput.value.trim()) enrolVisitor(group, idInput.value.trim(), nameInput.value.trim());
  }, { once: true });
}

async function enrolVisitor(group, employeeId, name) {
  try {
    const done = await api("/api/visitors/enrol", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ event_ids: group.event_ids, employee_id: employeeId, name }),
    });
    state.names.set(done.employee_id, name);
    toast(`${name} (${done.employee_id}) enrolled from ${counted(done.added, "face")}.`);
  } catch (error) {
    toast(`Not enrolled: ${error.message}`);
  }
  refreshVisitors();
}

const plainShowView = show;
const plainSignedOut = signedOut;

// eslint-disable-next-line no-global-assign
show = function showWithVisitors(view) {
  const admin = state.me && state.me.role === "admin";
  plainShowView(view === "visitors" && !admin ? "events" : view);
  if (state.view === "visitors") refreshVisitors();
};

// eslint-disable-next-line no-global-assign
signedOut = function signedOutWithVisitors(message) {
  $("#visitors-list").replaceChildren(); // strangers' faces are not left in the page
  plainSignedOut(message);
};

visitorsView();
