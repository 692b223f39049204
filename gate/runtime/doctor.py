"""Is this site ready before the first person walks up? `facegate doctor`'s checks, each a plain function giving
one Finding per thing checked (ok, warn or FAIL, with one line saying what was found or why not): the config, the
model files, the database and the journal, the key, each camera, the ports to listen on, the clock.

What the checks touch is what the gate's own start touches: the database is opened (a new one is made and brought
to the newest schema, as the first command would), a write is tried and rolled back, the journal's reserve is made.
No stored record is changed; but opening the database and the journal makes their files owner-only when they are
found wider (ensure_private, with a warning, as a gate's start does); only the key file is reported, not narrowed.
Meant for a site before its services start: a running `facegate serve` holds its port and a running gate its
local camera, and their checks FAIL.
"""

from __future__ import annotations

import queue
import stat
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from gate.config import CameraSettings, Settings, camera_settings, no_config_found
from gate.errors import FaceGateError
from gate.model.card import locate_card, read_card
from gate.runtime.ports import PortInUse, address_text, check_port_free
from gate.store.database import SCHEMA_HEAD, Database
from gate.store.encryption import WIDER_THAN_PRIVATE, Cipher, load_cipher
from gate.store.event_log import RESERVE_BYTES, Journal
from gate.store.sealed import prove_key, sealed_samples
from gate.vision.sources import Frame, FrameSource, configured_source, hide_credentials, open_source

if TYPE_CHECKING:  # imported when a camera gave a frame: it loads MTCNN (torch), seconds on a small machine
    from gate.vision.faces import FacePipeline

Status = Literal["ok", "warn", "FAIL"]
CAMERA_TIMEOUT_S = 10.0  # how long a camera may take to open and give its first frame
CLOCK_SLACK = timedelta(minutes=5)  # a record this far ahead of the clock says the clock is behind
PACKAGE = Path(__file__).parents[1]  # gate/: its files' times bound the clock from below


@dataclass(frozen=True)
class Finding:
    """One check's verdict: `status` ok (ready), warn (works, but look) or FAIL (fix it before the gate runs)."""

    status: Status
    check: str
    detail: str

    @property
    def failed(self) -> bool:
        return self.status == "FAIL"

    def line(self) -> str:
        return f"{self.status:<6}{self.check:<10}{self.detail}"


def _guarded(check: str, work: Callable[..., Finding], *args: object) -> Finding:
    """`work(*args)`'s finding, or FAIL with the one-line reason of a user's error (a missing file, a port...)."""
    try:
        return work(*args)
    except FaceGateError as error:
        return Finding("FAIL", check, str(error))
    except OSError as error:
        return Finding("FAIL", check, f"{error.filename or ''}: {error.strerror or error}".lstrip(": "))


def check_config(settings: Settings, config_file: Path | None) -> Finding:
    """Which config file the settings came from (they were validated when read); None: none was found."""
    if config_file is None:
        return Finding("FAIL", "config", no_config_found())
    cameras = len(camera_settings(settings))
    found = f"{cameras} camera{'s' if cameras > 1 else ''}"
    return Finding("ok", "config", f"{config_file.resolve()} valid ({found})")


def check_model(settings: Settings) -> Finding:
    """The configured model's card, its weights (and cohort) matching the card's sha256, its threshold there."""
    path = locate_card(settings.model.path, settings.base_dir)
    card = read_card(path)
    decision = settings.decision
    threshold = decision.threshold if decision.threshold is not None else card.threshold(decision.target_far)
    return Finding(
        "ok", "model", f"{card.model_id} ({path.name}): weights match the card's sha256; threshold {threshold:.3f}"
    )


def open_database(settings: Settings) -> tuple[Database | None, Finding]:
    """The configured database, opened as a gate opens it (made and migrated to the newest schema when new),
    without the key (the key has its own check), and whether an access event could be written to it."""
    url = settings.database_url
    try:
        database = Database(url)
    except FaceGateError as error:
        return None, Finding("FAIL", "database", str(error))
    try:
        database.check_writable()
    except FaceGateError as error:
        return database, Finding("FAIL", "database", str(error))
    return database, Finding("ok", "database", f"{database.url} reachable and writable (schema at head {SCHEMA_HEAD})")


def check_journal(settings: Settings) -> Finding:
    """The journal decisions go to while the database cannot take them: writable, its reserve in place."""
    journal = Journal(settings.resolve(settings.database.journal_path))
    journal.check_writable()
    waiting = journal.waiting()
    pending = f"; {waiting} records wait for the database (replayed when a gate starts)" if waiting else ""
    reserve = f"its {RESERVE_BYTES // 1024} KiB reserve in place"
    return Finding("ok", "journal", f"{journal.path} writable, {reserve}{pending}")


def _key_file_wider(settings: Settings) -> Finding | None:
    """FAIL when the key file can be read by others (the key is reported, not narrowed: its owner decides)."""
    if not settings.encryption.key_file:
        return None
    path = settings.resolve(settings.encryption.key_file)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except FileNotFoundError:
        return None  # load_cipher says so, with the command that writes one
    if mode & WIDER_THAN_PRIVATE:
        return Finding("FAIL", "key", f"{path} can be read by other users (mode {mode:o}): chmod 600 {path}")
    return None


def _prove(cipher: Cipher, database: Database) -> str:
    """Unseal one stored row of each kind of face data with the key: what it opened (a FaceGateError if not)."""
    with database.session() as session:
        samples = sealed_samples(session)
    opened = prove_key(cipher, samples)
    if not opened:
        return "nothing encrypted yet to prove it against"
    return "opens the stored " + ", ".join(opened)


def _sealed_without_key(database: Database) -> Finding:
    with database.session() as session:
        sealed = [kind for kind, _ in sealed_samples(session)]
    if sealed:
        stored = ", ".join(sealed)
        return Finding("FAIL", "key", f"no key configured, but the stored {stored}s are encrypted: set [encryption]")
    return Finding("ok", "key", "none configured: templates and faces are stored plain (facegate keys new)")


def check_key(settings: Settings, database: Database | None) -> Finding:
    """The encryption key: readable, owner-only, and the one that opens what is stored (one row of each kind)."""
    wider = _key_file_wider(settings)
    if wider is not None:
        return wider
    cipher = load_cipher(settings)
    if cipher is None:
        return _sealed_without_key(database) if database is not None else Finding("ok", "key", "none configured")
    if database is None:
        return Finding("warn", "key", f"{cipher.source} readable; not proven (the database did not open)")
    return Finding("ok", "key", f"{cipher.source} owner-only, {_prove(cipher, database)}")


class FrameProbe:
    """A source opened as the gate opens it (open_source), in a thread of its own, for its first frame: opening a
    stream or reading it may block, so the caller waits at most a timeout, and the source is closed either way."""

    def __init__(self, spec: str, camera: CameraSettings) -> None:
        self.spec = spec
        self.shown = hide_credentials(spec)  # as printed: a stream's credentials hidden
        self.camera = camera
        self._answer: queue.Queue[Frame | None | FaceGateError] = queue.Queue()
        self._lock = threading.Lock()
        self._source: FrameSource | None = None
        self._given_up = False

    def _read(self) -> None:
        try:
            source = open_source(self.spec, self.camera)
        except FaceGateError as error:
            self._answer.put(error)
            return
        with self._lock:
            self._source = source
            if self._given_up:  # opened after the caller stopped waiting
                source.close()
                return
        self._answer.put(next(iter(source.frames()), None))

    def first_frame(self, timeout_s: float) -> Frame | None:
        """The first frame (None: the source ended without one); a FaceGateError when it cannot be opened or gives
        no frame within `timeout_s`."""
        threading.Thread(target=self._read, name=f"doctor {self.shown}", daemon=True).start()
        try:
            answer = self._answer.get(timeout=timeout_s)
        except queue.Empty:
            answer = FaceGateError(f"{self.shown}: no frame within {timeout_s:g} s (check camera.source, the network)")
        finally:
            with self._lock:
                self._given_up = True
                if self._source is not None:
                    self._source.close()  # a waiting frames() ends
        if isinstance(answer, FaceGateError):
            raise answer
        return answer


def describe_faces(frame: Frame, pipeline: FacePipeline, min_eye_distance_px: float) -> tuple[Status, str]:
    """The largest face of a frame, by the gate's own MTCNN pipeline: its eye distance against the quality gate's."""
    faces = pipeline.process(frame.image)
    if not faces:
        return "ok", "no face in it (stand in front of it to see the eye distance the gate gets)"
    eyes = faces[0].face.eye_distance
    found = f"a face {eyes:.0f} px between the eyes; the gate needs {min_eye_distance_px:g}"
    return ("ok", found) if eyes >= min_eye_distance_px else ("warn", found + " (closer, or a sharper camera)")


def check_camera(settings: Settings, pipeline: Callable[[], FacePipeline], timeout_s: float) -> Finding:
    """One camera: opened, a first frame within `timeout_s`, and the eye distance of a face in it, if any."""
    camera, source = settings.camera, configured_source(settings)  # a video file: relative to the config's folder
    shown = hide_credentials(source)  # a stream's password is never printed
    started = time.monotonic()
    try:
        frame = FrameProbe(source, camera).first_frame(timeout_s)
    except FaceGateError as error:
        return Finding("FAIL", "camera", f"{camera.gate_id}: {error}")
    if frame is None:
        return Finding("FAIL", "camera", f"{camera.gate_id}: {shown} ended without a frame")
    took = time.monotonic() - started  # to open it and get a frame (not to load the detector after)
    height, width = frame.image.shape[:2]
    status, faces = describe_faces(frame, pipeline(), settings.quality.min_eye_distance_px)
    found = f"{camera.gate_id}: {shown}: a {width}x{height} frame in {took:.1f} s; {faces}"
    return Finding(status, "camera", found)


def check_cameras(settings: Settings, timeout_s: float) -> Iterator[Finding]:
    """Each configured camera ([camera], or every [[cameras]] entry); the detector loaded once, when a frame came."""
    built: list[FacePipeline] = []

    def pipeline() -> FacePipeline:
        if not built:
            from gate.vision.faces import FacePipeline

            built.append(FacePipeline(settings.detector, settings.quality))
        return built[0]

    for each in camera_settings(settings):
        yield _guarded("camera", check_camera, each, pipeline, timeout_s)


def check_port(what: str, host: str, port: int) -> Finding:
    """Whether `what` could listen on host:port now, probed as `facegate serve` probes it (gate.runtime.ports)."""
    where = address_text(host, port)
    try:
        check_port_free(host, port)
    except PortInUse:
        return Finding("FAIL", "port", f"{where} ({what}) is in use by another program")
    except FaceGateError as error:
        return Finding("FAIL", "port", f"{where} ({what}): {error}")
    return Finding("ok", "port", f"{where} ({what}) free")


def listen_addresses(settings: Settings) -> list[tuple[str, str, int]]:
    """(what, host, port) of every server the config starts: `facegate serve`, and each camera's badge claims
    over http."""
    found = [("facegate serve", settings.service.host, settings.service.port)]
    for each in camera_settings(settings):
        if each.card.claims == "http":
            host, port = each.card.listen.rsplit(":", 1)
            found.append((f"badge claims of {each.camera.gate_id}", host, int(port)))
    return found


def newest_file_time(root: Path = PACKAGE) -> datetime:
    """When this FaceGate's newest file was written (built or installed): a clock before it is certainly wrong."""
    return datetime.fromtimestamp(max(path.stat().st_mtime for path in root.rglob("*.py")), UTC)


def newest_record(database: Database) -> datetime | None:
    """The newest time a gate's clock wrote to the database: its latest access event or heartbeat."""
    times = [event.time for event in database.events(limit=1)]
    times += [status.last_seen for status in database.gate_statuses()]
    return max(times, default=None)


def check_clock(now: datetime, installed: datetime, newest: datetime | None) -> Finding:
    """The clock is plausible: not before this FaceGate's files were written, nor behind the newest record a gate
    wrote (by more than CLOCK_SLACK). Records are stamped with it and signed badge claims are checked against it."""
    shown = f"{now:%Y-%m-%d %H:%M:%S} UTC"
    if now < installed - CLOCK_SLACK:
        return Finding("FAIL", "clock", f"{shown} is before this FaceGate's files ({installed:%Y-%m-%d}): set the time")
    if newest is not None and newest - now > CLOCK_SLACK:
        behind = f"{(newest - now).total_seconds() / 60:.0f} min behind the newest record ({newest:%Y-%m-%d %H:%M} UTC)"
        return Finding("FAIL", "clock", f"{shown} is {behind}: set the time (NTP)")
    return Finding("ok", "clock", f"{shown}, after this FaceGate's files and the newest record")


def diagnose(
    settings: Settings, config_file: Path | None, camera_timeout_s: float = CAMERA_TIMEOUT_S
) -> Iterator[Finding]:
    """Every check, in the order a site is set up; each finding as soon as it is known. `config_file` None (no
    config found): the checks that would make a database or a journal wherever this was started are left out."""
    yield check_config(settings, config_file)
    yield _guarded("model", check_model, settings)
    if config_file is None:
        yield from check_cameras(settings, camera_timeout_s)
        return
    database, reached = open_database(settings)
    yield reached
    try:
        yield _guarded("journal", check_journal, settings)
        yield _guarded("key", check_key, settings, database)
        yield from check_cameras(settings, camera_timeout_s)
        for what, host, port in listen_addresses(settings):
            yield _guarded("port", check_port, what, host, port)
        newest = newest_record(database) if database is not None and not reached.failed else None
        yield check_clock(datetime.now(UTC), newest_file_time(), newest)
    finally:
        if database is not None:
            database.close()
