// "Enrol from camera" on the Enrol view: an admin picks a gate whose camera the site config names, gives the
// person's id and name and presses Start; the server counts down, watches that camera and enrols the person
// (/api/capture). The page follows it: the countdown, the latest frame with the face boxed, the frames kept, the
// outcome. Uses app.js's globals (api, el, $, toast, loadNames, state).
"use strict";

const CAPTURE_POLL_MS = 300; // how often a running capture's state (and a new preview) is asked for
const capture = { timer: null, previewing: false, frame: 0, shown: null };

async function loadCaptureGates() {
  const select = $("#capture-gate");
  const chosen = select.value;
  const body = await api("/api/capture/gates");
  select.replaceChildren(...body.gates.map((gate) => el("option", { value: gate, text: gate })));
  if (body.gates.includes(chosen)) select.value = chosen;
  $("#capture-start").disabled = body.gates.length === 0 || capture.timer !== null;
  if (body.gates.length === 0) captureStatus("The site config names no gate camera.", "bad");
}

function captureStatus(text, kind = "") {
  const line = $("#capture-status");
  line.textContent = text;
  line.className = `status ${kind}`;
}

function capturing(running) {
  $("#capture-start").disabled = running;
  $("#capture-cancel").hidden = !running;
  for (const field of $("#capture-form").querySelectorAll("input, select")) field.disabled = running;
}

function nextPreview() {
  // one preview request at a time (a slow answer is not piled up behind); the frame shown is replaced only once
  // the next has loaded, and stays when there is none yet
  if (capture.previewing) return;
  capture.previewing = true;
  capture.frame += 1;
  const next = el("img", { id: "capture-preview", alt: "what the gate's camera sees" });
  next.addEventListener("load", () => {
    $("#capture-preview").replaceWith(next);
    capture.previewing = false;
  });
  next.addEventListener("error", () => (capture.previewing = false));
  next.src = `/api/capture/preview?n=${capture.frame}`;
}

function showCapture(job) {
  const running = job.state === "counting" || job.state === "watching";
  $("#capture-live").hidden = false;
  $("#capture-countdown").textContent = job.state === "counting" ? String(Math.max(1, Math.ceil(job.seconds_left))) : "";
  $("#capture-view").hidden = job.state === "counting";
  const who = job.name ? `${job.name} (${job.employee_id})` : job.employee_id;
  const kept = `${job.kept} of ${job.wanted} good frames kept`;
  if (job.state === "counting") $("#capture-progress").textContent = `Get ready: ${who} at ${job.gate_id}`;
  else if (running) $("#capture-progress").textContent = `${kept} · ${Math.ceil(job.seconds_left)} s left`;
  else $("#capture-progress").textContent = `${kept} (${job.frames_seen} frames looked at)`;
  if (job.state === "watching") nextPreview();
  const outcome = job.outcome ? job.outcome[0].toUpperCase() + job.outcome.slice(1) : "";
  if (job.state === "done") captureStatus(outcome, "good");
  else if (job.state === "refused") captureStatus(outcome, "bad");
  else captureStatus(job.state === "counting" ? "Starting…" : `Watching ${job.gate_id}'s camera…`);
  if (capture.shown !== job.state) {
    capture.shown = job.state; // a new stage: the countdown, the preview or the outcome, in view
    $("#capture-status").scrollIntoView({ block: "nearest" });
  }
  return running;
}

async function pollCapture() {
  let job;
  try {
    job = await api("/api/capture");
  } catch (error) {
    stopPolling();
    if (!(error instanceof ApiError && error.status === 404)) captureStatus(error.message, "bad");
    return;
  }
  if (!showCapture(job)) {
    stopPolling();
    if (job.state === "done") loadNames().catch(() => {});
  }
}

function startPolling() {
  capturing(true);
  clearInterval(capture.timer);
  capture.timer = setInterval(pollCapture, CAPTURE_POLL_MS);
}

function stopPolling() {
  clearInterval(capture.timer);
  capture.timer = null;
  capturing(false);
}

async function startCapture(submit) {
  submit.preventDefault();
  const form = new FormData(submit.target);
  const ask = {
    gate_id: form.get("gate_id"),
    employee_id: String(form.get("employee_id") || "").trim(),
    name: String(form.get("name") || "").trim() || null,
    frames: Number(form.get("frames")),
  };
  $("#capture-preview").replaceWith(el("img", { id: "capture-preview", alt: "what the gate's camera sees" }));
  $("#capture-live").hidden = true;
  try {
    showCapture(await api("/api/capture", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(ask),
    }));
    startPolling();
  } catch (error) {
    captureStatus(error.message, "bad");
  }
}

async function cancelCapture() {
  try {
    await api("/api/capture", { method: "DELETE" });
  } catch (error) {
    toast(error.message);
  }
}

function enrolViewShown() {
  if (!state.me || state.me.role !== "admin") return;
  loadCaptureGates().catch((error) => captureStatus(error.message, "bad"));
  // a capture started earlier (or from another tab) is followed again
  if (capture.timer === null) api("/api/capture").then((job) => showCapture(job) && startPolling(), () => {});
}

function startCaptureView() {
  $("#capture-form").addEventListener("submit", startCapture);
  $("#capture-cancel").addEventListener("click", cancelCapture);
  const view = $("#view-enrol");
  new MutationObserver(() => !view.hidden && enrolViewShown()).observe(view, { attributes: true, attributeFilter: ["hidden"] });
}

document.addEventListener("DOMContentLoaded", startCaptureView);
