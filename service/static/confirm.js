// Confirming the door's faces on the Events page: an admin says who a denied event's face showed ("This was…"),
// and it becomes one of their templates if the server's rules allow; a confirmed event says so, with Undo.
// Loaded after app.js: it wraps app.js's eventRow() and uses its api(), el(), toast(), named(), state.
"use strict";

const plainEventRow = eventRow;

// eslint-disable-next-line no-global-assign
eventRow = function confirmableEventRow(event, isNew) {
  const row = plainEventRow(event, isNew);
  const info = row.children[1];
  const admin = state.me && state.me.role === "admin";
  if (event.confirmed_as) {
    const line = el("div", { class: "confirmed-as" }, el("span", { text: `confirmed as ${named(event.confirmed_as)}` }));
    if (admin) line.append(el("button", { class: "quiet small", type: "button", text: "Undo", onclick: () => undoConfirm(event) }));
    info.append(line);
  } else if (admin && event.decision === "denied" && event.face && event.id != null) {
    info.append(el("div", { class: "confirmed-as" }, el("button", { class: "quiet small", type: "button", text: "This was…", onclick: () => askWho(event) })));
  }
  return row;
};

function confirmDialog() {
  let dialog = $("#confirm-event");
  if (dialog) return dialog;
  const names = el("datalist", { id: "confirm-event-names" });
  dialog = el(
    "dialog",
    { id: "confirm-event" },
    el(
      "form",
      { method: "dialog" },
      el("p", { id: "confirm-event-text" }),
      el("div", { id: "confirm-event-face" }),
      el("label", { text: "Employee id" }, el("input", { name: "employee_id", list: "confirm-event-names", required: true, maxlength: "64", autocomplete: "off" })),
      names,
      el(
        "div",
        { class: "actions" },
        el("button", { value: "cancel", class: "quiet", formnovalidate: true, text: "Cancel" }),
        el("button", { value: "ok", id: "confirm-event-ok", text: "Add to their faces" }),
      ),
    ),
  );
  document.body.append(dialog);
  return dialog;
}

function askWho(event) {
  const dialog = confirmDialog();
  const input = dialog.querySelector("input[name=employee_id]");
  $("#confirm-event-text").textContent = `Who was at ${event.gate_id} at ${clock(event.time)}? Their face will be added to their templates if it matches them, and no one else, well enough.`;
  $("#confirm-event-face").replaceChildren(faceImage(`/api/events/${encodeURIComponent(event.event_uid)}/face`, "the event's face"));
  $("#confirm-event-names").replaceChildren(...[...state.names].map(([id, name]) => el("option", { value: id, text: name })));
  input.value = event.candidate_id || "";
  dialog.showModal();
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "ok" && input.value.trim()) confirmAs(event, input.value.trim());
  }, { once: true });
}

async function confirmAs(event, employeeId) {
  try {
    const done = await api(`/api/events/${event.id}/confirm`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ employee_id: employeeId }),
    });
    toast(`Added to ${named(done.employee_id)}'s faces: score ${done.score.toFixed(3)} (needs ${done.review_threshold.toFixed(3)}).`);
  } catch (error) {
    toast(`Not added: ${error.message}`);
  }
  refresh();
}

async function undoConfirm(event) {
  try {
    const undone = await api(`/api/events/${event.id}/confirm`, { method: "DELETE" });
    toast(`Undone: the face is no longer one of ${named(undone.employee_id)}'s.`);
  } catch (error) {
    toast(error.message);
  }
  refresh();
}
