"""/api/capture: enrol a person from a gate's camera on the admin page. An admin picks a gate (only those whose camera
the site config names: a page never gives the server a source to open), the person's id and name; after a
countdown, a background thread of `facegate serve` watches that camera with enrollment.capture, as `facegate enroll
capture --gate` does, while the page polls its state and a preview of the latest frame. One capture at a time."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import cv2
import numpy as np
from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from enrollment.audit import acting_as
from enrollment.capture import (
    DEFAULT_FRAMES,
    DEFAULT_TIMEOUT_S,
    MAX_FRAMES,
    MAX_TIMEOUT_S,
    MIN_TIMEOUT_S,
    CaptureOptions,
    Collector,
    check_capture,
    enrol_captured,
    watch_camera,
)
from enrollment.people import EnrollmentRefused, EnrollResult
from gate.errors import FaceGateError
from gate.runtime.annotate import GREEN, YELLOW, Overlay, draw_overlays
from gate.vision.sources import Frame, GateCamera, configured_gates, gate_camera
from service.accounts import Principal
from service.auth import admin, parts_of
from service.params import api_employee_id
from service.parts import ServiceParts
from service.people import refusal_message
from service.responses import Refusal, refusals

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/capture", tags=["capture"], responses=refusals(401, 403, 422))

COUNTDOWN_S = 3.0  # from Start to the camera being watched: the person gets ready
PREVIEW_WIDTH = 640  # a preview wider than this is scaled down
JPEG_QUALITY = 80
NO_STORE = {"Cache-Control": "no-store"}  # a person's face: no cache keeps it
CaptureState = Literal["counting", "watching", "done", "refused"]
BUSY: dict[int | str, dict[str, Any]] = {
    409: {"model": Refusal, "description": "a capture is running already (one at a time), or none is to cancel"}
}


class CaptureRequest(BaseModel):
    """Who to capture at which gate; frames and timeout within `facegate enroll capture`'s limits."""

    model_config = ConfigDict(extra="forbid")

    gate_id: str = Field(min_length=1, max_length=100, description="a gate whose camera the site config names")
    employee_id: str = Field(max_length=200)
    name: str | None = Field(None, max_length=200, description="required for a new person")
    frames: int = Field(DEFAULT_FRAMES, ge=1, le=MAX_FRAMES, description="good, different frames to enrol")
    timeout_s: float = Field(DEFAULT_TIMEOUT_S, ge=MIN_TIMEOUT_S, le=MAX_TIMEOUT_S, allow_inf_nan=False)
    force: bool = Field(False, description="enrol even if the face matches another enrolled person")
    accept_unmatched: bool = Field(False, description="add faces unlike the person's own")


class CaptureStatus(BaseModel):
    """The capture running or last run on this server."""

    gate_id: str
    employee_id: str
    name: str | None
    started_by: str
    state: CaptureState = Field(
        description="counting: the countdown before the camera is watched; watching; done: enrolled; refused: "
        "ended without enrolling (outcome says why; cancelled too)"
    )
    kept: int = Field(description="good, different frames kept so far")
    wanted: int
    frames_seen: int
    seconds_left: float = Field(description="of the countdown while counting, of the timeout while watching")
    outcome: str | None = Field(description="once ended: what was enrolled, or the one-line refusal")
    added: int | None = Field(description="faces added, once done")


class CaptureGates(BaseModel):
    gates: list[str] = Field(description="the gate ids whose camera the site config names ([camera], [[cameras]])")


@dataclass(frozen=True)
class Plan:
    """A capture asked for, checked: the person's valid id and the gate's configured camera."""

    request: CaptureRequest
    employee_id: str
    camera: GateCamera
    caller: str


class CaptureJob:
    """One capture in its thread: its state for polling, and the latest frame looked at (one image, kept for the
    preview) with its face's box. Fields are written by the capture thread, read by requests."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.stop = threading.Event()
        self.state: CaptureState = "counting"
        self.kept = self.seen = 0
        self.until = time.monotonic() + COUNTDOWN_S  # the countdown's end, then the timeout's
        self.outcome: str | None = None
        self.added: int | None = None
        self._latest: tuple[np.ndarray, Overlay | None] | None = None
        self._view = threading.Lock()

    @property
    def running(self) -> bool:
        return self.state in ("counting", "watching")

    def see(self, frame: Frame, collector: Collector) -> None:
        """CaptureOptions.watch: keep the frame and its face's box for the preview, and the count kept."""
        overlay = None
        if collector.box is not None:
            kept = collector.verdict == "kept"
            label = f"kept {len(collector.kept)}/{collector.wanted}" if kept else collector.verdict.replace("_", " ")
            overlay = Overlay(collector.box, label, GREEN if kept else YELLOW)
        with self._view:
            self._latest = (frame.image, overlay)
            self.kept, self.seen = len(collector.kept), collector.seen

    def preview(self) -> bytes | None:
        """The latest frame looked at with its face's box, a JPEG; None before the first."""
        with self._view:
            latest = self._latest
        if latest is None:
            return None
        image, overlay = latest
        scale = min(1.0, PREVIEW_WIDTH / image.shape[1])
        if scale < 1.0:
            image = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        canvas = draw_overlays(image, [overlay] if overlay else [], scale)
        ok, jpeg = cv2.imencode(
            ".jpg", cv2.cvtColor(canvas, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]
        )
        return jpeg.tobytes() if ok else None

    def status(self) -> CaptureStatus:
        plan = self.plan
        left = max(0.0, self.until - time.monotonic()) if self.running else 0.0
        return CaptureStatus(
            gate_id=plan.request.gate_id, employee_id=plan.employee_id, name=plan.request.name,
            started_by=plan.caller, state=self.state, kept=self.kept, wanted=plan.request.frames,
            frames_seen=self.seen, seconds_left=round(left, 1), outcome=self.outcome, added=self.added,
        )  # fmt: skip

    def run(self, parts: ServiceParts) -> None:
        """The capture thread: the countdown (the network loads meanwhile), the camera, the enrolment."""
        try:
            result = self._capture(parts)
        except FaceGateError as error:
            message = refusal_message(error) if isinstance(error, EnrollmentRefused) else str(error)
            self._end("refused", " ".join(message.split()))
        except Exception:
            log.exception("capture of %s at %s failed", self.plan.employee_id, self.plan.request.gate_id)
            self._end("refused", "the capture failed on the server (its log says why)")
        else:
            verb = "enrolled" if result.created else "updated"
            self.added = result.added
            self._end("done", f"{verb} {result.employee_id}: {result.added} of {len(result.outcomes)} faces added")

    def _capture(self, parts: ServiceParts) -> EnrollResult:
        plan, request = self.plan, self.plan.request
        with parts.lock:
            runtime = parts.runtime
        if self.stop.wait(max(0.0, self.until - time.monotonic())):
            raise FaceGateError(f"capture cancelled before {request.gate_id}'s camera was watched")
        self.until = time.monotonic() + request.timeout_s
        self.state = "watching"
        options = CaptureOptions(request.frames, request.timeout_s, watch=self.see, stop=self.stop)
        captured = watch_camera(runtime, plan.camera, options)
        with parts.lock, acting_as(f"api:{plan.caller}"):
            parts.current_gallery()
            return enrol_captured(
                runtime, plan.employee_id, request.name, captured, request.force, request.accept_unmatched
            )

    def _end(self, state: CaptureState, outcome: str) -> None:
        self.outcome = outcome
        self.state = state
        log.info("capture of %s at %s: %s", self.plan.employee_id, self.plan.request.gate_id, outcome)


class CaptureDesk:
    """The server's one capture at a time: the running one, or the last one (kept for polling until the next)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.job: CaptureJob | None = None

    def start(self, plan: Plan, parts: ServiceParts) -> CaptureJob:
        with self._lock:
            if self.job is not None and self.job.running:
                running = self.job.plan
                raise HTTPException(
                    409, f"a capture of {running.employee_id} at {running.request.gate_id} is running: one at a time"
                )
            self.job = CaptureJob(plan)
        threading.Thread(target=self.job.run, args=(parts,), name="capture", daemon=True).start()
        return self.job

    def current(self) -> CaptureJob:
        if self.job is None:
            raise HTTPException(404, "no capture has run since the server started")
        return self.job

    def close(self) -> None:
        """Stop a running capture (the server is stopping)."""
        if self.job is not None:
            self.job.stop.set()


def desk_of(request: Request) -> CaptureDesk:
    return request.app.state.capture


Admin = Annotated[Principal, Depends(admin)]


@router.get("/gates")
def gates(request: Request, _caller: Admin) -> CaptureGates:
    """The gates a capture may watch: those whose camera the site config names."""
    return CaptureGates(gates=configured_gates(parts_of(request).settings))


@router.post("", status_code=201, responses={**refusals(400, 404), **BUSY})
def start(request: Request, body: CaptureRequest, caller: Admin) -> CaptureStatus:
    """Start capturing a person at a gate (201): a countdown, then the camera the config gives that gate is watched
    until it has shown `frames` good, different frames of the one person in view or `timeout_s` runs out; the faces
    are then enrolled as photos are. A new person needs a name. 409 while another capture runs."""
    parts = parts_of(request)
    employee_id = api_employee_id(body.employee_id)
    camera = gate_camera(parts.settings, body.gate_id)
    check_capture(parts.database, employee_id, body.name)
    plan = Plan(body, employee_id, camera, caller.name)
    return desk_of(request).start(plan, parts).status()


@router.get("", responses=refusals(404))
def state(request: Request, _caller: Admin) -> CaptureStatus:
    """The running capture's state, or the last one's outcome."""
    return desk_of(request).current().status()


PREVIEW_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "the latest frame the capture looked at, its face boxed, a JPEG image",
        "content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}},
    }
}


@router.get("/preview", response_class=Response, responses={**PREVIEW_RESPONSE, **refusals(404)})
def preview(request: Request, _caller: Admin) -> Response:
    """What the capture's camera showed last, with the face it found (green: kept); never cached. 404 before
    the first frame."""
    jpeg = desk_of(request).current().preview()
    if jpeg is None:
        raise HTTPException(404, "the capture has not looked at a frame yet")
    return Response(jpeg, media_type="image/jpeg", headers=NO_STORE)


@router.delete("", responses={**refusals(404), **BUSY})
def cancel(request: Request, caller: Admin) -> CaptureStatus:
    """Cancel the running capture: it ends refused, nothing enrolled (409 when none is running)."""
    job = desk_of(request).current()
    if not job.running:
        raise HTTPException(409, "no capture is running")
    log.info("capture of %s cancelled by %s", job.plan.employee_id, caller.name)
    job.stop.set()
    return job.status()
