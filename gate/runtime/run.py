"""Running a gate on a frame source: its loop opened (refusing to start when no decision could be recorded), the
frames stepped through until they end or SIGINT/SIGTERM, the loop ended and its summary logged; everything it
opened closed however the run ends."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from gate.config import Settings
from gate.door.claim_feeds import open_claims
from gate.door.requests import Actuator
from gate.runtime.annotate import AnnotatedVideo
from gate.runtime.loop import GateLoop
from gate.runtime.parts import Runtime
from gate.runtime.results import GateSummary
from gate.runtime.watchdog import Watchdog, service_watchdog
from gate.store.event_log import Journal
from gate.vision.sources import FrameSource

if TYPE_CHECKING:
    from gate.door.mqtt_events import EventPublisher as MqttEventPublisher

log = logging.getLogger(__name__)


@contextmanager
def stop_on_signals(wake: Callable[[], object] | None = None) -> Iterator[threading.Event]:
    """SIGINT/SIGTERM set the yielded event (the loop finishes its frame, then stops); a second interrupts.
    `wake` (run in a thread of its own) stops a wait for the next frame, which may not come soon (a camera away)."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # signal handlers can only be installed from the main thread
        return

    def handle(signum: int, _frame: object) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        log.info("%s received: stopping after this frame", signal.Signals(signum).name)
        stop.set()
        if wake is not None:  # not here: the handler runs in the thread that may hold what `wake` needs
            threading.Thread(target=wake, name="stop", daemon=True).start()

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _open_publisher(settings: Settings) -> MqttEventPublisher | None:
    """The MQTT event publisher when [mqtt] enabled (paho is loaded only then)."""
    if not settings.mqtt.enabled:
        return None
    from gate.door.mqtt_events import EventPublisher as MqttEventPublisher

    return MqttEventPublisher(settings.mqtt, settings.camera.gate_id)


def _watch(source: FrameSource, loop: GateLoop, video: AnnotatedVideo | None, watchdog: Watchdog) -> bool:
    """Step the loop through the source's frames until they end or a signal; True when stopped by a signal."""
    with stop_on_signals(source.close if source.live else None) as stop:  # a camera away yields no next frame
        try:
            for frame in source.frames():
                watchdog.begin()  # systemd's watchdog: a frame whose work hangs stops the pings
                loop.step(frame)
                if video is not None:
                    video.write(frame.image, loop.overlays)
                watchdog.end()
                if stop.is_set():
                    break
        except KeyboardInterrupt:
            log.warning("interrupted in the middle of a frame")
            stop.set()
    return stop.is_set()


def run_gate(runtime: Runtime, source: FrameSource, actuator: Actuator, annotate: Path | None = None) -> GateSummary:
    """Run the gate on `source` until it ends or SIGINT/SIGTERM; every decision is recorded, then a grant opens
    the door. `annotate`: also write the frames with boxes, names and scores there. The source, the claim feed,
    the video, the MQTT publisher ([mqtt] enabled) and the actuator are closed however the run ends (a refusal
    to start included)."""
    with ExitStack() as cleanup:
        cleanup.callback(source.close)
        cleanup.callback(actuator.close)
        loop = open_loop(cleanup, runtime, actuator, source)
        video = AnnotatedVideo(annotate, source.fps) if annotate is not None else None
        if video is not None:
            cleanup.callback(video.close)
        with service_watchdog(f"gate {loop.gate_id} watching {source.description}") as watchdog:
            stopped = _watch(source, loop, video, watchdog)
        # inside: the tracks still open are decided (and published) before the cleanup closes the feeds
        summary = end_loop(loop, stopped, camera_gave_up=source.gave_up)
    return summary


def open_loop(cleanup: ExitStack, runtime: Runtime, actuator: Actuator, source: FrameSource) -> GateLoop:
    """One camera's gate loop, ready: its MQTT publisher and claim feed opened, the journal of an earlier run
    replayed, its heartbeat online. `cleanup` closes them. Refuses to start (FaceGateError) when no decision could
    be recorded, rather than lose them: by the database, or by the journal with its reserve in place."""
    runtime.database.check_writable()
    settings = runtime.settings
    Journal(settings.resolve(settings.database.journal_path)).check_writable()
    publisher = _open_publisher(runtime.settings)
    if publisher is not None:
        cleanup.callback(publisher.close)  # status "offline" after the last decision's event
    loop = GateLoop(runtime, actuator, publisher=publisher, camera=source)
    loop.events.replay()  # decisions journalled while the database was away, last time
    feed = open_claims(runtime.settings, loop.claims) if loop.claims is not None else None
    if feed is not None:
        cleanup.callback(feed.close)
    gate_id = runtime.settings.camera.gate_id
    log.info("gate %s watching %s (threshold %.3f)", gate_id, source.description, loop.policy.threshold)
    loop.sign_on()  # online from the start, beating while the camera is away too
    cleanup.callback(loop.heartbeat.halt)  # a crash leaves its last beat "running": it goes stale and reads lost
    return loop


def end_loop(loop: GateLoop, stopped_by_signal: bool = False, camera_gave_up: bool = False) -> GateSummary:
    """The camera's frames have ended: its open tracks decided, its last heartbeat written ("stopped"; not when
    `camera_gave_up`: the gate then reads lost, for a service manager to restart it), what the decisions came to
    logged (records still waiting in the journal, or lost, said loudly); returns the run's summary."""
    loop.finish()
    if camera_gave_up:
        loop.give_up()
        log.error("gate %s: its camera gave up (camera.max_reconnects): the gate reads lost, not stopped", loop.gate_id)
    else:
        loop.sign_off()  # its last heartbeat says "stopped", its snapshot deleted
    summary = loop.summary(stopped_by_signal, camera_gave_up)
    tally, described = summary.tally, summary.tally.describe()
    log.info(
        "gate %s stopped: %d frames (%d processed), %d decisions: %s",
        loop.gate_id,
        loop.frames,
        loop.processed,
        len(loop.decisions),
        described,
    )
    if tally.waiting:
        log.warning(
            "gate %s: %d records wait in %s for the database (added when it is back, or at the next start)",
            loop.gate_id,
            tally.waiting,
            loop.events.journal.path,
        )
    if not tally.complete:
        log.critical("gate %s: not every decision was recorded: %s", loop.gate_id, described)
    return summary
