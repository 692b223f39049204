"""Typed settings for the whole gate, loaded once from config.toml and validated (unknown keys rejected)."""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Literal, Self, TypeVar, get_args

from click import get_app_dir
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from gate.errors import FaceGateError

CONFIG_ENV = "FACEGATE_CONFIG"
CONFIG_NAME = "config.toml"
SYSTEM_CONFIG = Path("/etc/facegate") / CONFIG_NAME

# the per-comparison false-accept rates a card's thresholds are calibrated at, as the card's keys: the one list
CalibratedFar = Literal["0.01", "0.001", "0.0001", "0.00001"]
CALIBRATED_FARS: tuple[str, ...] = get_args(CalibratedFar)


class SettingsModel(BaseModel):
    """A group of settings, the one way FaceGate declares them (this file's sections, and the evaluations' and
    training's configs): unknown keys refused, numbers bounded by their fields, rules checked by validators, frozen.
    Values a user gave go through `validated`, which turns a wrong one into a one-line error naming its key."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class _Section(SettingsModel):
    """A section of config.toml."""


FOURCC_CHARACTERS = re.compile(r"[A-Za-z0-9 ]{1,4}")  # a V4L2 pixel format's code: MJPG, YUYV, H264, "Y16 "


class CameraSettings(_Section):
    source: str = "0"  # camera index, /dev/videoN, rtsp:// or http:// URL, or a video file path
    gate_id: str = Field("front-door", min_length=1)
    reconnect_initial_s: float = Field(1.0, gt=0, le=60)
    reconnect_max_s: float = Field(30.0, gt=0, le=3600)
    max_reconnects: int = Field(0, ge=0)  # 0 = retry for ever
    process_every: int = Field(1, ge=1, le=30)  # look at every n-th frame
    # a local camera's mode (index or /dev/videoN), asked for at every (re)open; 0 or "": the camera's default
    width: int = Field(0, ge=0, le=16384)
    height: int = Field(0, ge=0, le=16384)
    fps: float = Field(0.0, ge=0, le=1000, allow_inf_nan=False)
    pixel_format: str = ""  # FOURCC, e.g. "MJPG" or "YUYV" (facegate cameras lists what each camera offers)

    @field_validator("pixel_format")
    @classmethod
    def _fourcc(cls, value: str) -> str:
        if value and not FOURCC_CHARACTERS.fullmatch(value):
            raise ValueError('must be a FOURCC of up to 4 letters or digits, e.g. "MJPG" or "YUYV" (or "")')
        return value.ljust(4) if value else value

    @model_validator(mode="after")
    def _size_in_pairs(self) -> CameraSettings:
        if (self.width == 0) != (self.height == 0):
            raise ValueError("width and height go together: set both, or neither (0: the camera's default)")
        return self


Probability = Annotated[float, Field(ge=0.0, le=1.0)]
MIN_FACE_PX_FLOOR = 10  # the smallest [detector] min_face_px that may be set (MTCNN's window is 12 px)


class DetectorSettings(_Section):
    # MTCNN's smallest face side searched for; 0: derived from [quality] min_eye_distance_px (gate.vision.detection
    # .smallest_face_px), so the pyramid does not look for faces the quality gate would reject as too small
    min_face_px: int = Field(0, ge=0, le=1000)
    thresholds: tuple[Probability, Probability, Probability] = (0.6, 0.7, 0.7)  # MTCNN's stages, each in [0, 1]
    device: str = "cpu"
    # larger images are searched on a copy scaled to this longest side; the crop still comes from the full image
    max_side: int = Field(1280, ge=160, le=10000)
    # a camera stream's faces followed between full detections by MTCNN's later stages only (gate.vision.following)
    follow: bool = True  # off: a full search on every frame (twice the time; docs/research/detection-speed.md)
    full_every: int = Field(3, ge=1, le=100)  # following: a full detection every n-th processed frame (new faces)

    @field_validator("min_face_px")
    @classmethod
    def _searchable(cls, value: int) -> int:
        if 0 < value < MIN_FACE_PX_FLOOR:
            raise ValueError(f"must be 0 (derived from the quality gate) or at least {MIN_FACE_PX_FLOOR}")
        return value


class QualitySettings(_Section):
    min_eye_distance_px: float = Field(18.0, ge=0)
    min_detector_prob: float = Field(0.95, ge=0, le=1)
    min_sharpness: float = Field(20.0, ge=0)  # variance of the Laplacian of the aligned crop
    max_yaw: float = Field(0.5, gt=0, le=2)  # nose offset from the template, in eye distances


class ModelSettings(_Section):
    path: str = ""  # empty: the default model shipped inside the package; a shipped name; or a card path
    device: str = "cpu"
    flip_average: bool = False  # embed each face and its mirror image, average (twice the embedding time)


class DecisionSettings(_Section):
    target_far: CalibratedFar = "0.0001"
    votes_needed: int = Field(3, ge=1, le=100)  # N agreeing frames ...
    window: int = Field(5, ge=1, le=100)  # ... among the last M frames of a track
    early_deny: bool = True  # deny as soon as a full window has no frame above the threshold (else: at track end)
    cooldown_s: float = Field(10.0, ge=0)
    track_timeout_s: float = Field(1.5, gt=0)
    # overrides the model card's calibrated threshold; on the card's score scale (cosine, or normalised)
    threshold: float | None = Field(None, allow_inf_nan=False)
    allow_loose_threshold: bool = False  # let `threshold` go below the card's loosest calibrated one (FAR 1e-2)
    # "frame": match each usable frame's own embedding; "mean": the track's quality-weighted mean embedding so far
    track_embedding: Literal["frame", "mean"] = "frame"

    @model_validator(mode="after")
    def _votes_fit_window(self) -> DecisionSettings:
        if self.votes_needed > self.window:
            raise ValueError(f"votes_needed ({self.votes_needed}) must not exceed window ({self.window})")
        return self


class DatabaseSettings(_Section):
    url: str = "sqlite:///data/facegate.db"
    # decisions the database cannot take right now are appended (fsynced) here and replayed when it is back
    journal_path: str = "data/events.journal"


class EventsSettings(_Section):
    """The access log: events are kept; the face crop kept with each is deleted after keep_days (0: never)."""

    keep_days: int = Field(30, ge=0, le=3650)


class VisitorsSettings(_Section):
    """The unknown visitors (enrollment.visitors): recent denied faces that matched nobody, grouped by who they
    look like: those of the last `days`, at most `max_faces` of them (each is embedded again), two faces in one
    group only when they score at least the card's threshold at `group_far` (looser than the door's: a person
    looks at the group before enrolling it)."""

    days: int = Field(30, ge=1, le=366)
    max_faces: int = Field(300, ge=1, le=2000)
    group_far: CalibratedFar = "0.001"


class SnapshotSettings(_Section):
    """The running gate's latest annotated camera frame, for the admin page's Gates view: off by default (it shows
    people's faces). On: one JPEG per gate in the database, overwritten every every_s, deleted on a clean stop."""

    enabled: bool = False
    every_s: float = Field(5.0, ge=1.0, le=3600)
    max_side: int = Field(640, ge=160, le=1920)  # the frame is scaled down to this longest side first
    quality: int = Field(80, ge=30, le=95)  # JPEG quality


READER_ID = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"  # a badge reader's id: it goes into claims and log lines


def loopback_host(host: str) -> bool:
    """Whether `host` (a listen address's host part) is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to any interface


class ReaderSettings(_Section):
    """A badge reader whose claims this gate accepts: its id and where its shared secret is kept (never here)."""

    id: str = Field(pattern=READER_ID)
    secret_file: str = ""  # a file holding the secret (`facegate card secret PATH` writes one)
    secret_env: str = ""  # or the name of an environment variable holding it

    @model_validator(mode="after")
    def _one_secret(self) -> ReaderSettings:
        if bool(self.secret_file) == bool(self.secret_env):
            raise ValueError(f"reader {self.id!r} needs secret_file or secret_env (one of them)")
        return self


class CardSettings(_Section):
    """Card + face: a badge reader claims an identity and the gate verifies the face 1:1 against that person.
    Over http and mqtt a claim counts only when signed by one of `readers` (HMAC-SHA256, docs/research/mqtt-acl.md)."""

    # off: face only (1:N against everyone); mqtt: from <[mqtt] topic_prefix>/<gate_id>/claim on the [mqtt] broker
    claims: Literal["off", "stdin", "http", "mqtt"] = "off"
    listen: str = Field("127.0.0.1:8765", pattern=r"^[^:\s]+:\d{1,5}$")  # http: host:port of POST /claim
    allow_remote: bool = False  # http: listen on an address other than loopback (with TLS, a proxy, in front)
    timeout_s: float = Field(10.0, gt=0, le=300)  # a claim not matched by a face within this time expires
    readers: tuple[ReaderSettings, ...] = ()  # [[card.readers]]: whose signed claims count (http and mqtt)
    max_skew_s: float = Field(30.0, ge=1, le=300)  # a claim's timestamp this far from the gate's clock is refused
    reader_burst: int = Field(3, ge=1, le=100)  # claims a reader may send at once ...
    reader_per_minute: float = Field(20.0, gt=0, le=600)  # ... and then this many a minute; more are refused

    @model_validator(mode="after")
    def _signed_and_local(self) -> CardSettings:
        ids = [reader.id for reader in self.readers]
        twice = next((reader_id for reader_id in ids if ids.count(reader_id) > 1), None)
        if twice is not None:
            raise ValueError(f"reader id {twice!r} is given twice")
        if self.claims in ("http", "mqtt") and not self.readers:
            raise ValueError(
                f"claims = {self.claims!r} needs [[card.readers]] (id, and secret_file or secret_env): "
                "a claim counts only when signed by a configured reader"
            )
        host = self.listen.rsplit(":", 1)[0]
        if self.claims == "http" and not loopback_host(host) and not self.allow_remote:
            raise ValueError(
                f"listen = {self.listen!r} is reachable from the network: listen on 127.0.0.1, or put TLS (a proxy) "
                "in front and set allow_remote = true"
            )
        return self


class LivenessRules(SettingsModel):
    """The liveness test's settings a site may change, the one place they and their bounds are written: [liveness]
    adds whether it runs, gate.decision.liveness.LivenessParams the test's inner workings."""

    # a track scoring at least this is live: parallax left unexplained by one plane, in eye distances (BPCER <= 5 %
    # on DevTrain: docs/research/liveness.md)
    threshold: float = Field(0.0052, gt=0, le=1)
    min_frames: int = Field(12, ge=2, le=300)  # usable frames of a track before there is a verdict (1 s at 12 fps)
    baseline: int = Field(8, ge=1, le=100)  # frames between the two face patches compared (parallax grows with it)
    max_pairs: int = Field(24, ge=1, le=1000)  # a track's score: the median of its latest pair residuals

    @model_validator(mode="after")
    def _baseline_fits(self) -> Self:
        if self.min_frames <= self.baseline:
            raise ValueError(f"min_frames ({self.min_frames}) must exceed baseline ({self.baseline})")
        return self


class LivenessSettings(LivenessRules, _Section):
    """A passive multi-frame motion test over each face track (off unless measured to work: docs/research/liveness.md).
    With it on, a grant waits for the track's verdict; a flat-moving face, or a track too short for a verdict,
    is denied NOT_LIVE."""

    enabled: bool = False


class EncryptionSettings(_Section):
    """Templates and stored face crops encrypted at rest with a key from a file or an environment variable."""

    key_file: str = ""  # a file holding the key (`facegate keys new` writes one)
    key_env: str = ""  # or the name of an environment variable holding it


class GallerySettings(_Section):
    index_path: str = "data/gallery.faiss"
    kind: Literal["exact", "hnsw"] = "exact"
    match: Literal["best", "mean"] = "best"  # score a person by their best template, or by their mean template
    hnsw_m: int = Field(32, ge=4, le=256)
    hnsw_ef_search: int = Field(64, ge=1, le=4096)


class EnrollmentSettings(_Section):
    # a confirmed door event's face must match the person at the card's threshold at this FAR: looser than the
    # gate's decision (a person confirms it), one of the card's calibrated FARs (enrollment.confirm)
    review_far: CalibratedFar = "0.01"


MQTT_TOPIC = r"^[^#+\s]+$"  # a topic published to: no wildcards, no blanks
MqttTopic = Annotated[str, Field(pattern=MQTT_TOPIC)]


class ActuatorSettings(_Section):
    kind: Literal["log", "shell", "http", "mqtt", "http_relay", "serial_relay"] = "log"
    command: list[str] = []  # shell: argv; {person_id}, {name}, {gate_id}, {score} are filled in
    url: str = ""  # http: POSTed a JSON body; http_relay: the relay's address, e.g. http://192.168.1.50
    topic: str = ""  # mqtt: the door request is published here (QoS 1) on the [mqtt] broker
    timeout_s: float = Field(3.0, gt=0, le=60)
    # http_relay and serial_relay: how long the relay stays on (http_relay: the relay's own timer switches it off)
    open_s: float = Field(3.0, gt=0, le=300)
    # http_relay: shelly_gen1 (GET /relay/<relay>?turn=on&timer=<open_s>) or shelly_rpc (Gen2+:
    # GET /rpc/Switch.Set?id=<relay>&on=true&toggle_after=<open_s>)
    api: Literal["shelly_gen1", "shelly_rpc"] = "shelly_gen1"
    relay: int = Field(0, ge=0, le=15)  # http_relay: the relay's number as the device counts (from 0)
    username: str = ""  # http_relay: HTTP basic or digest login (empty with a password: "admin")
    password_file: str = ""  # http_relay: an absolute path of a file holding the password (never the password)
    password_env: str = ""  # or the name of an environment variable holding it
    port: str = ""  # serial_relay: the board's serial port, e.g. /dev/ttyUSB0 or /dev/serial/by-id/...
    baudrate: int = Field(9600, ge=300, le=921600)
    channel: int = Field(1, ge=1, le=16)  # serial_relay: the relay on the board (from 1), for the LCUS frames
    on_bytes: str = ""  # serial_relay: other boards' frames as hex ("A0 01 01 A2"); empty: LCUS frames of channel
    off_bytes: str = ""

    @model_validator(mode="after")
    def _target_given(self) -> ActuatorSettings:
        if self.kind == "shell" and not self.command:
            raise ValueError("kind = 'shell' needs command = [argv...]")
        if self.kind in ("http", "http_relay") and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"kind = {self.kind!r} needs url = 'http(s)://...'")
        if self.kind == "mqtt" and not re.match(MQTT_TOPIC, self.topic):
            raise ValueError("kind = 'mqtt' needs topic = 'a/topic' (no wildcards + or #)")
        if self.kind == "http_relay":
            _check_relay_login(self)
        if self.kind == "serial_relay":
            _check_serial_relay(self)
        return self


def _check_relay_login(settings: ActuatorSettings) -> None:
    """http_relay's login: one password source at most, a file named by its absolute path, a user with a password."""
    if "@" in settings.url.split("://", 1)[-1].split("/", 1)[0]:
        raise ValueError("url: no login in the url (user:password@): give username, and password_file or password_env")
    if settings.password_file and settings.password_env:
        raise ValueError("kind = 'http_relay': set password_file or password_env, not both")
    if settings.password_file and not Path(settings.password_file).is_absolute():
        raise ValueError(f"password_file = {settings.password_file!r}: give the file's absolute path")
    if settings.username and not (settings.password_file or settings.password_env):
        raise ValueError(f"username = {settings.username!r} needs password_file or password_env")


def _check_serial_relay(settings: ActuatorSettings) -> None:
    """serial_relay: a port, and on_bytes/off_bytes both given (hex) or both left to the LCUS frames."""
    if not settings.port:
        raise ValueError("kind = 'serial_relay' needs port = '/dev/ttyUSB0' (the board's serial port)")
    if bool(settings.on_bytes) != bool(settings.off_bytes):
        raise ValueError("kind = 'serial_relay': give on_bytes and off_bytes together (or neither, for LCUS boards)")
    for key in ("on_bytes", "off_bytes"):
        text = getattr(settings, key)
        try:
            bytes.fromhex(text)
        except ValueError:
            raise ValueError(f"{key} = {text!r} is not hex bytes (e.g. 'A0 01 01 A2')") from None


class MqttSettings(_Section):
    """The MQTT broker: every decision published to <topic_prefix>/<gate_id>/events, a retained status (last will
    "offline") to <topic_prefix>/<gate_id>/status; the `mqtt` actuator uses the same broker."""

    enabled: bool = False  # publish events and status (the `mqtt` actuator needs only the broker keys)
    host: str = Field("localhost", min_length=1)
    port: int = Field(1883, ge=1, le=65535)
    username: str = ""
    password_env: str = ""  # the name of an environment variable holding the password (never the password)
    tls: bool = False  # TLS with the system's certificate authorities (port 8883, usually)
    topic_prefix: MqttTopic = "facegate"
    client_id: str = ""  # empty: facegate-<gate_id>
    keepalive_s: int = Field(30, ge=5, le=3600)  # the broker declares the gate offline after 1.5 x this silent
    reconnect_max_s: float = Field(30.0, gt=0, le=3600)  # a lost broker is retried after 1 s, doubling to this


class ServiceSettings(_Section):
    """`facegate serve`: where the API listens (loopback unless the config says otherwise), sessions, uploads."""

    host: str = Field("127.0.0.1", min_length=1)  # anything but loopback is reachable from the network (warned)
    port: int = Field(8080, ge=1, le=65535)
    session_hours: float = Field(8.0, gt=0, le=720)  # a signed-in session expires this long after sign-in
    max_upload_mb: float = Field(20.0, gt=0, le=500)  # the largest enrolment request (all its photos together)
    # reverse proxies (addresses or CIDRs) whose X-Forwarded-For / X-Forwarded-Proto are believed; from anyone
    # else those headers are ignored, so a client cannot choose the address its sign-ins are counted against
    trusted_proxies: tuple[str, ...] = ()

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        for entry in value:
            try:
                ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(f"{entry!r} is no IP address or CIDR network (e.g. 10.0.0.5 or 10.0.0.0/24)") from None
        return tuple(entry.strip() for entry in value)


class LoggingSettings(_Section):
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    # "text": one readable line per record; "json": one JSON object per line (time, level, logger, message,
    # exception) for journald and log collectors
    format: Literal["text", "json"] = "text"


class Settings(_Section):
    camera: CameraSettings = CameraSettings()
    detector: DetectorSettings = DetectorSettings()
    quality: QualitySettings = QualitySettings()
    model: ModelSettings = ModelSettings()
    decision: DecisionSettings = DecisionSettings()
    database: DatabaseSettings = DatabaseSettings()
    events: EventsSettings = EventsSettings()
    visitors: VisitorsSettings = VisitorsSettings()
    snapshot: SnapshotSettings = SnapshotSettings()
    card: CardSettings = CardSettings()
    liveness: LivenessSettings = LivenessSettings()
    encryption: EncryptionSettings = EncryptionSettings()
    gallery: GallerySettings = GallerySettings()
    enrollment: EnrollmentSettings = EnrollmentSettings()
    actuator: ActuatorSettings = ActuatorSettings()
    mqtt: MqttSettings = MqttSettings()
    service: ServiceSettings = ServiceSettings()
    logging: LoggingSettings = LoggingSettings()
    # [[cameras]]: the cameras one `facegate run` serves, each entry overriding sections of this config for its
    # camera only (PER_CAMERA); without any, the one camera is [camera]. See camera_settings().
    cameras: tuple[dict[str, dict[str, object]], ...] = ()
    base_dir: Path = Path(".")  # folder relative paths are resolved against (the config file's)

    def resolve(self, path: str) -> Path:
        """A path from the config, made absolute against the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else (self.base_dir / p)

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL, with a relative SQLite path resolved against the config's folder."""
        url = self.database.url
        prefix = "sqlite:///"
        if url.startswith(prefix) and url != prefix + ":memory:" and not url.startswith(prefix + "/"):
            return prefix + str(self.resolve(url[len(prefix) :]).resolve())
        return url


PER_CAMERA = ("camera", "actuator", "card", "decision", "liveness")  # what may differ between one process's cameras


def camera_settings(settings: Settings, source: str = "config") -> list[Settings]:
    """The settings of each camera `facegate run` serves: `settings` alone without [[cameras]]; else one per entry,
    its sections (PER_CAMERA only; the model, detector, database and gallery are shared) laid over the config's.
    Each entry names its own camera.gate_id (distinct) and camera.source. A FaceGateError names the bad key."""
    if not settings.cameras:
        return [settings]
    base = settings.model_dump(exclude={"cameras"})
    found: list[Settings] = []
    for index, entry in enumerate(settings.cameras):
        where = f"{source}: cameras[{index}]"
        shared = sorted(set(entry) - set(PER_CAMERA))
        if shared:
            raise FaceGateError(f"{where}.{shared[0]}: shared by every camera; per camera: {', '.join(PER_CAMERA)}")
        missing = [key for key in ("gate_id", "source") if key not in entry.get("camera", {})]
        if missing:
            raise FaceGateError(f"{where}.camera.{missing[0]}: each camera needs its own")
        merged = {**base, **{name: {**base[name], **values} for name, values in entry.items()}}
        try:
            found.append(Settings.model_validate(merged))
        except ValidationError as error:
            raise FaceGateError(_describe(error, source, within=f"cameras[{index}].")) from None
    gate_ids = [camera.camera.gate_id for camera in found]
    twice = next((gate_id for gate_id in gate_ids if gate_ids.count(gate_id) > 1), None)
    if twice is not None:
        raise FaceGateError(f"{source}: cameras: gate_id {twice!r} is given to more than one camera")
    return found


def _describe(
    error: ValidationError, source: str, within: str = "", valid: Sequence[str] = (), names: Mapping[str, str] = {}
) -> str:
    first = error.errors()[0]
    key = within + (".".join(str(part) for part in first["loc"]) or "(root)")
    key = names.get(key, key)
    message = first["msg"]
    if first["type"] == "extra_forbidden":
        message = "unknown key" + (f"; valid: {', '.join(valid)}" if valid and len(first["loc"]) == 1 else "")
    elif "input" in first and not isinstance(first["input"], dict):
        message += f" (got {first['input']!r})"
    more = len(error.errors()) - 1
    return f"{source}: {key}: {message}" + (f" (and {more} more)" if more else "")


Model = TypeVar("Model", bound=BaseModel)


def validated(model: type[Model], values: Mapping[str, object], source: str, options: Mapping[str, str] = {}) -> Model:
    """`model` made from `values` a user gave (a recipe file, `--set key=value`: "3" becomes 3 where a number is
    wanted), or a FaceGateError naming the first offending key in one line, "source: key: what is wrong" (for an
    unknown key, the valid ones). `options`: the name the user typed for a key (e.g. "walk_s": "--walk-seconds")."""
    try:
        return model.model_validate(values)
    except ValidationError as error:
        raise FaceGateError(_describe(error, source, valid=tuple(model.model_fields), names=options)) from None


def settings_from_dict(data: dict, source: str = "config", base_dir: Path = Path(".")) -> Settings:
    """Validate a parsed config; the error names the first offending key."""
    if "base_dir" in data:
        raise FaceGateError(f"{source}: base_dir: unknown key")
    try:
        settings = Settings.model_validate({**data, "base_dir": base_dir})
    except ValidationError as error:
        raise FaceGateError(_describe(error, source)) from None
    camera_settings(settings, source)  # every [[cameras]] entry must make a valid config too
    return settings


def config_search() -> tuple[Path, ...]:
    """Where a config file is looked for when neither --config nor $FACEGATE_CONFIG names one, in order:
    ./config.toml, the user's config folder (click's get_app_dir: ~/.config/facegate on Linux), /etc/facegate."""
    return Path(CONFIG_NAME), Path(get_app_dir("facegate")) / CONFIG_NAME, SYSTEM_CONFIG


def config_path(explicit: str | os.PathLike | None = None) -> Path | None:
    """Which config file to read: --config, else $FACEGATE_CONFIG (either must exist: a FaceGateError names it),
    else the first of config_search() that exists; None when there is none (the built-in defaults)."""
    named = explicit or os.environ.get(CONFIG_ENV)
    if named:
        path = Path(named)
        if not path.exists():
            raise FaceGateError(f"config file not found: {path}" + ("" if explicit else f" (${CONFIG_ENV})"))
        return path
    return next((path for path in config_search() if path.exists()), None)


def no_config_found() -> str:
    """The one-line refusal of work that keeps site data (a database, an index, crops) when no config was found:
    the defaults would put it in ./data wherever the command was started."""
    looked = ", ".join(str(path.absolute()) for path in config_search())
    return (
        f"no config file found (no --config or ${CONFIG_ENV}; looked for {looked}); "
        "create one with `facegate init DIR` (then run from DIR, or pass --config DIR/config.toml)"
    )


def read_settings(path: Path | None) -> Settings:
    """Read and validate the config file at `path`; None gives the built-in defaults."""
    if path is None:
        return Settings()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise FaceGateError(f"{path}: not valid TOML: {error}") from None
    except OSError as error:  # a folder, or a file this user may not read
        raise FaceGateError(f"cannot read config file {path}: {error.strerror}") from None
    return settings_from_dict(data, source=str(path), base_dir=path.resolve().parent)


def load_settings(explicit: str | os.PathLike | None = None) -> Settings:
    """The settings of the config file config_path() finds (the built-in defaults when it finds none)."""
    return read_settings(config_path(explicit))
