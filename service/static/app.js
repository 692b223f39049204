// The FaceGate admin page: talks to the JSON API with the signed-in session (cookie + CSRF header).
// Everything shown is built with DOM calls and textContent: names and ids are never parsed as HTML.
"use strict";

const POLL_MS = 2000; // events and gates (and a newer camera snapshot) are fetched again this often while open
const VIEWS = ["events", "people", "enrol", "gates"];
const state = { me: null, view: null, names: new Map(), seen: null, timer: null, peopleQuery: "" };

const $ = (selector) => document.querySelector(selector);

function el(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attributes)) {
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = value;
    else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (value !== false && value != null) node.setAttribute(key, value === true ? "" : value);
  }
  node.append(...children.filter((child) => child != null));
  return node;
}

class ApiError extends Error {
  constructor(status, message, body) {
    super(message);
    this.status = status;
    this.body = body;
  }
}

function csrfToken() {
  const found = document.cookie.split("; ").find((part) => part.startsWith("facegate_csrf="));
  return found ? decodeURIComponent(found.slice("facegate_csrf=".length)) : "";
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (options.method && options.method !== "GET") headers.set("X-CSRF-Token", csrfToken());
  const response = await fetch(path, { ...options, headers, credentials: "same-origin" });
  const isJson = (response.headers.get("content-type") || "").includes("application/json");
  const body = isJson ? await response.json() : null;
  if (response.status === 401 && state.me && path !== "/api/session") signedOut("Your session has ended: sign in again.");
  if (!response.ok) throw new ApiError(response.status, (body && body.error) || response.statusText, body);
  return body;
}

function toast(message) {
  const box = $("#toast");
  box.textContent = message;
  box.hidden = false;
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (box.hidden = true), 5000);
}

function confirmed(question, action) {
  const dialog = $("#confirm");
  $("#confirm-text").textContent = question;
  $("#confirm-ok").textContent = action;
  dialog.showModal();
  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

// ---- time and names ----

function ago(iso) {
  if (!iso) return "never";
  const seconds = Math.max(0, Math.round((Date.now() - new Date(iso).getTime()) / 1000));
  if (seconds < 60) return `${seconds} s ago`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min ago`;
  if (seconds < 86400) return `${Math.round(seconds / 3600)} h ago`;
  return new Date(iso).toLocaleDateString();
}

function clock(iso) {
  const moment = new Date(iso);
  const today = moment.toDateString() === new Date().toDateString();
  return today ? moment.toLocaleTimeString() : moment.toLocaleString();
}

function named(employeeId) {
  const name = state.names.get(employeeId);
  return name ? `${name} (${employeeId})` : employeeId;
}

async function loadNames() {
  const body = await api("/api/people?limit=1000");
  state.names = new Map(body.people.map((person) => [person.employee_id, person.name]));
  return body;
}

function faceImage(src, label) {
  const image = el("img", { class: "face", src, alt: label, loading: "lazy" });
  image.addEventListener("error", () => image.replaceWith(el("div", { class: "face", text: "no face" })));
  return image;
}

// ---- events ----

function eventFilter() {
  const query = new URLSearchParams({ limit: "50" });
  const decision = $("#events-decision").value;
  const person = $("#events-person").value.trim();
  const gate = $("#events-gate").value;
  if (decision) query.set("decision", decision);
  if (person) query.set("person", person);
  if (gate) query.set("gate", gate);
  return query;
}

function eventRow(event, isNew) {
  const who = event.employee_id ? named(event.employee_id) : "Unknown face";
  const reason = event.reason === "UNKNOWN_FACE" ? "matched no one enrolled" : event.reason;
  const detail = [reason.replaceAll("_", " ").toLowerCase()];
  if (event.score != null) detail.push(`score ${event.score.toFixed(3)}`);
  if (event.candidate_id && !event.employee_id) detail.push(`nearest ${named(event.candidate_id)}`);
  if (event.claimed_id) detail.push(`badge ${event.claimed_id}`);
  if (event.door && event.door !== "opened") detail.push(`door ${event.door.replace("_", " ")}`);
  const face = event.face
    ? faceImage(`/api/events/${encodeURIComponent(event.event_uid)}/face`, `face at ${event.gate_id}`)
    : el("div", { class: "face", text: "no face" });
  return el(
    "li",
    { class: `event${isNew ? " new" : ""}`, "data-uid": event.event_uid || "", "data-decision": event.decision },
    face,
    el(
      "div",
      {},
      el("div", {}, el("span", { class: `pill ${event.decision}`, text: event.decision }), el("span", { class: "who", text: who })),
      el("div", { class: "detail", text: detail.join(" · ") }),
    ),
    el("div", { class: "when" }, el("div", { text: clock(event.time) }), el("div", { text: event.gate_id })),
  );
}

async function refreshEvents() {
  const body = await api(`/api/events?${eventFilter()}`);
  const firstLoad = state.seen === null;
  const seen = new Set(body.events.map((event) => event.event_uid));
  const rows = body.events.map((event) => eventRow(event, !firstLoad && !state.seen.has(event.event_uid)));
  state.seen = seen;
  $("#events-list").replaceChildren(...rows);
  $("#events-empty").hidden = rows.length > 0;
  const csv = eventFilter();
  csv.set("limit", "10000");
  $("#events-csv").href = `/api/events.csv?${csv}`;
}

// ---- people ----

function personCard(person) {
  const admin = state.me.role === "admin";
  const id = encodeURIComponent(person.employee_id);
  const status = person.active
    ? el("span", { class: "pill granted", text: "active" })
    : el("span", { class: "pill off", text: "deactivated" });
  const actions = admin
    ? el(
        "div",
        { class: "actions" },
        person.active
          ? el("button", { class: "quiet small", type: "button", text: "Deactivate", onclick: () => setActive(person, false) })
          : el("button", { class: "quiet small", type: "button", text: "Reactivate", onclick: () => setActive(person, true) }),
        el("button", { class: "danger small", type: "button", text: "Remove", onclick: () => removePerson(person) }),
      )
    : null;
  return el(
    "li",
    { class: `person${person.active ? "" : " inactive"}`, "data-id": person.employee_id },
    el(
      "header",
      {},
      faceImage(`/api/people/${id}/face?v=${person.templates}`, person.name),
      el(
        "div",
        {},
        el("div", { class: "who" }, el("a", { href: `#person/${id}`, text: person.name })), // person.js's page
        el("div", { class: "detail", text: `${person.employee_id} · ${person.templates} photo${person.templates === 1 ? "" : "s"}` }),
        el("div", { class: "detail" }, status, " ", strengthBadge(person)), // person.js
      ),
    ),
    actions,
  );
}

async function refreshPeople() {
  const search = $("#people-search").value.trim();
  const body = await api(`/api/people?${new URLSearchParams({ search, limit: "500" })}`);
  if (!search) state.names = new Map(body.people.map((person) => [person.employee_id, person.name]));
  $("#people-list").replaceChildren(...body.people.map(personCard));
  $("#people-empty").hidden = body.total > 0 || Boolean(search);
  $("#people-total").textContent = search ? `${body.total} found` : `${body.total} enrolled`;
}

async function setActive(person, active) {
  const verb = active ? "Reactivate" : "Deactivate";
  const question = active
    ? `Let ${person.name} (${person.employee_id}) in again at every gate?`
    : `Stop letting ${person.name} (${person.employee_id}) in at every gate? Their photos are kept.`;
  if (!(await confirmed(question, verb))) return;
  await act(() => api(`/api/people/${encodeURIComponent(person.employee_id)}/${verb.toLowerCase()}`, { method: "POST" }), `${person.name}: ${verb.toLowerCase()}d`);
}

async function removePerson(person) {
  const question = `Remove ${person.name} (${person.employee_id}) and all their photos? No gate will know them.`;
  if (!(await confirmed(question, "Remove"))) return;
  await act(() => api(`/api/people/${encodeURIComponent(person.employee_id)}`, { method: "DELETE" }), `${person.name} removed`);
}

async function act(call, done) {
  try {
    await call();
    toast(done);
  } catch (error) {
    toast(error.message);
  }
  await refreshPeople().catch((error) => toast(error.message));
}

// ---- enrolment ----

function outcomeRow(outcome) {
  const kind = outcome.status === "added" ? "granted" : outcome.status === "duplicate" ? "off" : "denied";
  return el(
    "tr",
    { "data-status": outcome.status },
    el("td", { text: outcome.photo }),
    el("td", {}, el("span", { class: `pill ${kind}`, text: outcome.status })),
    el("td", { text: outcome.reason || "" }),
  );
}

function showOutcomes(outcomes) {
  const table = $("#enrol-outcomes");
  table.tBodies[0].replaceChildren(...(outcomes || []).map(outcomeRow));
  table.hidden = !outcomes || outcomes.length === 0;
}

function enrolStatus(text, kind) {
  const line = $("#enrol-status");
  line.textContent = text;
  line.className = `status ${kind}`;
}

async function enrol(submit) {
  submit.preventDefault();
  const form = submit.target;
  const button = $("#enrol-submit");
  button.disabled = true;
  showOutcomes([]);
  enrolStatus("Enrolling: finding and checking each face…", "");
  try {
    const result = await api("/api/people", { method: "POST", body: new FormData(form) });
    const verb = result.created ? "Enrolled" : "Updated";
    enrolStatus(`${verb} ${result.employee_id}: ${result.added} of ${result.outcomes.length} photos added.`, "good");
    showOutcomes(result.outcomes);
    form.reset();
    await loadNames();
  } catch (error) {
    enrolStatus(error.message, "bad");
    showOutcomes(error.body && error.body.outcomes);
  } finally {
    button.disabled = false;
  }
}

// ---- gates ----

const GATE_STATES = {
  running: "a heartbeat came within the last 15 s",
  stopped: "it stopped cleanly (told to stop, or its recording ended)",
  lost: "no heartbeat for 15 s: crashed, killed, or its host or network is down",
};
const CAMERA_STATES = {
  waiting: "waiting for the camera",
  streaming: "streaming",
  lost: "lost, reconnecting",
  ended: "ended",
  off: "off (the gate stopped)", // the API says so of a stopped gate's camera
};
const snapshots = new Map(); // gate id -> { at, figure }: an image is fetched again only when a newer one exists

function snapshotFigure(gate) {
  if (!gate.snapshot_at) {
    snapshots.delete(gate.gate_id);
    return null;
  }
  let shown = snapshots.get(gate.gate_id);
  if (!shown) {
    const figure = el("figure", { class: "snapshot" }, el("img", { alt: `what the camera of ${gate.gate_id} sees` }), el("figcaption"));
    shown = { at: null, figure };
    snapshots.set(gate.gate_id, shown);
  }
  if (shown.at !== gate.snapshot_at) {
    shown.at = gate.snapshot_at; // the old picture stays on screen until the new one has loaded
    const query = new URLSearchParams({ at: gate.snapshot_at });
    shown.figure.querySelector("img").src = `/api/gates/${encodeURIComponent(gate.gate_id)}/snapshot?${query}`;
  }
  shown.figure.querySelector("figcaption").textContent = `Camera, ${ago(gate.snapshot_at)}`;
  return shown.figure;
}

function cameraText(gate) {
  if (!gate.camera) return "not reported";
  const text = CAMERA_STATES[gate.camera] || gate.camera;
  return gate.state === "lost" ? `${text} when last heard from` : text;
}

function gateCard(gate) {
  const facts = [
    ["Camera", cameraText(gate)],
    ["Last decision", gate.last_decision ? `${gate.last_decision}, ${ago(gate.last_decision_at)}` : "none yet"],
    ["Frames / s", gate.fps.toFixed(1)],
    ["Frames", String(gate.frames)],
    ["Last seen", ago(gate.last_seen)],
    ["Host", gate.host],
    ["Started", clock(gate.started_at)],
  ];
  const state = el("div", { class: `state ${gate.state}`, title: GATE_STATES[gate.state] || "", text: `● ${gate.state}` });
  return el(
    "li",
    { class: "gate", "data-gate": gate.gate_id, "data-state": gate.state },
    el("div", { class: "gate-head" }, el("div", { class: "who", text: gate.gate_id }), state),
    snapshotFigure(gate),
    el("dl", {}, ...facts.flatMap(([term, value]) => [el("dt", { text: term }), el("dd", { text: value })])),
  );
}

async function refreshGates() {
  const body = await api("/api/gates");
  if (state.view === "gates") {
    $("#gates-list").replaceChildren(...body.gates.map(gateCard));
    $("#gates-empty").hidden = body.gates.length > 0;
  }
  const select = $("#events-gate");
  const chosen = select.value;
  const options = body.gates.map((gate) => el("option", { value: gate.gate_id, text: gate.gate_id }));
  select.replaceChildren(el("option", { value: "", text: "All gates" }), ...options);
  select.value = body.gates.some((gate) => gate.gate_id === chosen) ? chosen : "";
}

async function showModel() {
  const model = await api("/api/model");
  $("#model-line").textContent = `Model ${model.model_id} (${model.architecture}); gates grant at a score of ${model.threshold.toFixed(3)} or more (${model.threshold_source}, target false-accept rate ${model.target_far}).`;
}

// ---- views, polling, signing in and out ----

async function refresh() {
  if (!state.me) return;
  try {
    if (state.view === "events") await Promise.all([refreshEvents(), refreshGates()]);
    else if (state.view === "gates") await refreshGates();
    $("#events-live").classList.remove("stale");
  } catch (error) {
    $("#events-live").classList.add("stale");
    if (!(error instanceof ApiError && error.status === 401)) console.warn(error);
  }
}

function show(view) {
  if (view.startsWith("person/")) return void showPerson(decodeURIComponent(view.slice("person/".length))); // person.js
  if (!VIEWS.includes(view) || (view === "enrol" && state.me.role !== "admin")) view = "events";
  state.view = view;
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== `view-${view}`;
  for (const link of document.querySelectorAll("#tabs a")) link.classList.toggle("current", link.dataset.view === view);
  if (view === "people") refreshPeople().catch((error) => toast(error.message));
  if (view === "gates") showModel().catch((error) => toast(error.message));
  refresh();
}

function signedIn(me) {
  state.me = me;
  state.seen = null;
  $("#who").textContent = `${me.name} · ${me.role}`;
  for (const node of document.querySelectorAll(".admin-only")) node.hidden = me.role !== "admin";
  $("#tabs").hidden = false;
  $("#account").hidden = false;
  loadNames().catch(() => {}).finally(() => show(location.hash.slice(1)));
  clearInterval(state.timer);
  state.timer = setInterval(refresh, POLL_MS);
}

function signedOut(message = "") {
  state.me = null;
  clearInterval(state.timer);
  for (const list of ["#events-list", "#people-list", "#gates-list"]) $(list).replaceChildren();
  snapshots.clear();
  $("#tabs").hidden = true;
  $("#account").hidden = true;
  for (const section of document.querySelectorAll(".view")) section.hidden = section.id !== "view-signin";
  $("#toast").hidden = true;
  signInMessage(message, "status");
}

function signInMessage(text, kind) {
  const line = $("#signin-error");
  line.textContent = text;
  line.className = kind;
}

async function signIn(submit) {
  submit.preventDefault();
  const form = new FormData(submit.target);
  try {
    const me = await api("/api/session", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ name: form.get("name"), password: form.get("password") }),
    });
    submit.target.reset();
    signedIn(me);
  } catch (error) {
    signInMessage(error.message, "error");
  }
}

async function signOut() {
  await api("/api/session/logout", { method: "POST" }).catch(() => {});
  signedOut("You are signed out.");
}

function start() {
  $("#signin-form").addEventListener("submit", signIn);
  $("#enrol-form").addEventListener("submit", enrol);
  $("#sign-out").addEventListener("click", signOut);
  $("#people-search").addEventListener("input", () => refreshPeople().catch((error) => toast(error.message)));
  for (const id of ["#events-decision", "#events-gate"]) $(id).addEventListener("change", () => { state.seen = null; refresh(); });
  $("#events-person").addEventListener("change", () => { state.seen = null; refresh(); });
  window.addEventListener("hashchange", () => state.me && show(location.hash.slice(1)));
  api("/api/session").then(signedIn, () => signedOut());
}

document.addEventListener("DOMContentLoaded", start);
