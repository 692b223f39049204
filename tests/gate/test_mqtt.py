"""MQTT against a real broker on loopback (Debian's mosquitto, started here): the door actuator, the event
publisher with its retained status and last will, a gate run that loses its broker in the middle, signed badge
claims, and the broker's ACL (recipes/mosquitto/facegate.acl) keeping every other user off a gate's topics."""

from __future__ import annotations

import getpass
import json
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
import paho.mqtt.publish as publish
import pytest
from facegate_process import free_port
from paho.mqtt.enums import CallbackAPIVersion

from enrollment.people import add_person
from evaluation.turnstile import TurnstileSpec, render_turnstile
from gate.config import ActuatorSettings, MqttSettings, Settings, settings_from_dict
from gate.decision.policy import Verdict
from gate.door.actuators import HoldsNothing, build_actuator
from gate.door.claim_feeds import open_claims
from gate.door.claims import ClaimBox, ReaderKey
from gate.door.mqtt_claims import MqttClaims, send_claim
from gate.door.mqtt_events import EventPublisher
from gate.door.mqtt_link import OFFLINE, ONLINE, MqttLink
from gate.door.requests import DoorOutcome, DoorRequest
from gate.errors import FaceGateError
from gate.matching.gallery import Gallery
from gate.model.embedder import Embedder
from gate.runtime.loop import GateLoop
from gate.runtime.parts import Runtime
from gate.runtime.run import end_loop, open_loop, run_gate
from gate.store.database import Database
from gate.store.events import AccessEventRecord
from gate.vision.faces import FacePipeline
from gate.vision.imageio import load_image
from gate.vision.sources import VideoFileSource

pytestmark = pytest.mark.slow  # every test starts a broker process

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
REQUEST = DoorRequest("test-door", "e1", "Ada Lovelace", 0.91)
EVENT_FIELDS = {"gate_id", "employee_id", "decision", "reason", "score", "door", "time", "event_uid"}
SPEC = TurnstileSpec(width=320, height=240, fps=10, walk_s=1.5, gap_s=1.0, seed=1)  # as tests/gate/test_loop.py


class Doors(HoldsNothing):
    """A door that always opens (the MQTT actuator has its own tests above)."""

    def open(self, request: DoorRequest) -> DoorOutcome:
        return DoorOutcome.OPENED


def wait_until(condition: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return condition()


class Broker:
    """A mosquitto process on a loopback port, stopped and started again on the same port at will; it keeps
    sessions and queued messages across a restart (persistence on), as a production broker would."""

    def __init__(self, folder: Path, access: str = "allow_anonymous true\n") -> None:
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            # `user`: as root, mosquitto would switch to user mosquitto, who may not write the persistence file here
            f"listener {self.port} 127.0.0.1\n{access}user {getpass.getuser()}\n"
            f"persistence true\npersistence_location {folder}/\nlog_dest file {folder / 'mosquitto.log'}\n"
        )
        self.process: subprocess.Popen | None = None

    def accepts(self) -> bool:
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
        except OSError:
            return False
        return True

    def start(self) -> None:
        self.process = subprocess.Popen([MOSQUITTO, "-c", str(self.config)], stderr=subprocess.PIPE)
        if not wait_until(self.accepts, 10):
            self.stop()
            raise RuntimeError(f"mosquitto did not open port {self.port}")

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def started_broker(tmp_path: Path, access: str = "allow_anonymous true\n") -> Iterator[Broker]:
    if MOSQUITTO is None:
        pytest.skip("mosquitto not installed (Debian: apt-get install mosquitto; .ci/run installs it)")
    folder = tmp_path / "broker"
    folder.mkdir(exist_ok=True)
    running = Broker(folder, access)
    running.start()
    yield running
    if running.process is not None:
        running.process.send_signal(signal.SIGCONT)  # in case a test left it stopped
    running.stop()


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    yield from started_broker(tmp_path)


ACL_FILE = Path(__file__).resolve().parents[2] / "recipes" / "mosquitto" / "facegate.acl"
ACL_GATE = "front-door"  # the gate the recipe's ACL is written for
USERS = ("gate-front-door", "reader-front-door", "door-front-door", "homeassistant", "visitor")  # visitor: no rules


def password(user: str) -> str:
    return f"pw-{user}"


def password_env(user: str) -> str:
    """The environment variable the acl_broker fixture puts `user`'s password in."""
    return "FACEGATE_TEST_MQTT_PASSWORD_" + user.upper().replace("-", "_")


@pytest.fixture
def acl_broker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Broker]:
    """mosquitto with no anonymous access, USERS in a password file made by mosquitto_passwd, and the recipe's
    ACL file as shipped. Each user's password is in password_env(user), as [mqtt] password_env would name it."""
    passwd_tool = shutil.which("mosquitto_passwd")
    if MOSQUITTO is None or passwd_tool is None:
        pytest.skip("mosquitto not installed (Debian: apt-get install mosquitto; .ci/run installs it)")
    folder = tmp_path / "broker"
    folder.mkdir()
    passwords = folder / "passwd"
    passwords.touch(mode=0o600)
    for user in USERS:
        subprocess.run([passwd_tool, "-b", str(passwords), user, password(user)], check=True, capture_output=True)
        monkeypatch.setenv(password_env(user), password(user))
    access = f"allow_anonymous false\npassword_file {passwords}\nacl_file {ACL_FILE}\n"
    yield from started_broker(tmp_path, access)


class Subscriber:
    """A paho client collecting every message under `topic` as (topic, payload, retained); with a fixed
    `client_id` its session (subscription and queued QoS 1 messages) outlives a disconnection."""

    def __init__(self, port: int, topic: str, client_id: str = "", user: str | None = None) -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.topic = topic
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not client_id)
        if user is not None:
            self.client.username_pw_set(user, password(user))
        self.client.on_connect = self._connected
        self.client.on_disconnect = lambda *_: self.subscribed.clear()
        self.client.on_subscribe = lambda *_: self.subscribed.set()
        self.client.on_message = self._message
        self.client.reconnect_delay_set(1, 1)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()
        assert self.subscribed.wait(10), "the test subscriber did not subscribe"

    def _connected(self, client: paho.Client, *_: object) -> None:
        client.subscribe(self.topic, qos=1)

    def _message(self, _client: paho.Client, _userdata: object, message: paho.MQTTMessage) -> None:
        with self.lock:
            self.messages.append((message.topic, message.payload.decode(), bool(message.retain)))

    def payloads(self, topic: str) -> list[str]:
        with self.lock:
            return [payload for t, payload, _ in self.messages if t == topic]

    def events(self, topic: str) -> list[dict]:
        return [json.loads(payload) for payload in self.payloads(topic)]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def retained(port: int, topic: str, user: str | None = None) -> str | None:
    """The retained payload a newcomer gets on `topic` (None when nothing is retained)."""
    newcomer = Subscriber(port, topic, user=user)
    wait_until(lambda: bool(newcomer.payloads(topic)), 2)
    newcomer.close()
    payloads = newcomer.payloads(topic)
    return payloads[0] if payloads else None


def mqtt_settings(port: int, **values: object) -> MqttSettings:
    return MqttSettings(enabled=True, host="127.0.0.1", port=port, reconnect_max_s=1.0, **values)


def door_settings(timeout_s: float) -> ActuatorSettings:
    return ActuatorSettings(kind="mqtt", topic="site/test-door/open", timeout_s=timeout_s)


def test_mqtt_actuator_publishes_the_door_request_and_reports_opened(broker: Broker) -> None:
    listener = Subscriber(broker.port, "site/#")
    actuator = build_actuator(door_settings(3.0), mqtt_settings(broker.port), "test-door")
    try:
        assert actuator.open(REQUEST) is DoorOutcome.OPENED  # the broker acknowledged (PUBACK)
        assert wait_until(lambda: bool(listener.payloads("site/test-door/open")), 5)
    finally:
        actuator.close()
        listener.close()
    [request] = listener.events("site/test-door/open")
    assert {k: request[k] for k in ("gate_id", "person_id", "name", "score")} == {
        "gate_id": "test-door",
        "person_id": "e1",
        "name": "Ada Lovelace",
        "score": 0.91,
    }
    assert request["time"].endswith("+00:00")


READER_ENV = "FACEGATE_TEST_READER_SECRET"
READER = ReaderKey("lobby", b"r" * 43)  # the badge reader's secret, as [[card.readers]] secret_env gives it
FORGER = ReaderKey("lobby", b"f" * 43)  # the reader's id, a guessed secret


@pytest.fixture
def reader_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(READER_ENV, READER.secret.decode())


def card_settings(gate_id: str, mqtt: MqttSettings, claims: str = "mqtt", listen: str = "127.0.0.1:8765") -> Settings:
    card = {"claims": claims, "listen": listen, "readers": [{"id": "lobby", "secret_env": READER_ENV}]}
    return settings_from_dict({"camera": {"gate_id": gate_id}, "card": card, "mqtt": mqtt.model_dump()})


def test_signed_badge_claims_arrive_over_mqtt_and_forged_replayed_or_retained_ones_are_dropped(
    broker: Broker, reader_secret: None
) -> None:
    topic, server = "facegate/test-door/claim", {"hostname": "127.0.0.1", "port": broker.port, "qos": 1}
    publish.single(topic, READER.sign("test-door", "E-OLD"), retain=True, **server)  # an old read the broker kept
    box = ClaimBox(time.monotonic)
    feed = open_claims(card_settings("test-door", mqtt_settings(broker.port)), box)
    try:
        assert isinstance(feed, MqttClaims) and feed.link.wait_connected(5)
        genuine = READER.sign("test-door", "E1")
        publish.single(topic, genuine, **server)
        assert wait_until(lambda: box.received == 1, 5) and box.current().employee_id == "E1"  # type: ignore[union-attr]
        stale = READER.sign("test-door", "E2", now=time.time() - 60)
        for forged in (b"E2", b'{"employee_id": "E2"}', FORGER.sign("test-door", "E2"), stale, genuine):
            publish.single(topic, forged, **server)
        assert wait_until(lambda: box.refused.total() == 5, 5), box.refused
        assert box.refused == {"malformed": 1, "unsigned": 1, "bad_mac": 1, "stale": 1, "replayed": 1}
        assert (box.current().employee_id, box.received) == ("E1", 1)  # type: ignore[union-attr]
    finally:
        feed.close()  # type: ignore[union-attr]


def broker_user(port: int, user: str) -> MqttSettings:
    """A client of the ACL broker logging in as `user` (its password from the variable the fixture set)."""
    return mqtt_settings(port, username=user, password_env=password_env(user))


def publish_as(port: int, user: str, topic: str, payload: str | bytes, retain: bool = False) -> None:
    """Publish as `user` (QoS 1: back once the broker has taken it, or silently dropped it for the ACL)."""
    auth = {"username": user, "password": password(user)}
    publish.single(topic, payload, qos=1, retain=retain, hostname="127.0.0.1", port=port, auth=auth)


OTHER_USERS = ("homeassistant", "visitor", "door-front-door")  # broker users that are neither the gate nor the reader


def test_the_acl_lets_only_the_gate_publish_its_events_and_status_and_only_its_reader_claim(
    acl_broker: Broker, reader_secret: None
) -> None:
    port, prefix = acl_broker.port, f"facegate/{ACL_GATE}"
    watcher = Subscriber(port, "facegate/#", user="homeassistant")  # what Home Assistant would see
    snoop = Subscriber(port, f"{prefix}/claim", user="visitor")
    fake = {"gate_id": ACL_GATE, "employee_id": "E001", "decision": "granted", "reason": "GRANTED", "door": "opened"}
    for user in (*OTHER_USERS, "reader-front-door"):
        publish_as(port, user, f"{prefix}/events", json.dumps(fake))
        publish_as(port, user, f"{prefix}/status", ONLINE, retain=True)
    assert retained(port, f"{prefix}/status", user="homeassistant") is None  # no forged "online" was kept
    box = ClaimBox(time.monotonic)
    feed = open_claims(card_settings(ACL_GATE, broker_user(port, "gate-front-door")), box)
    publisher = EventPublisher(broker_user(port, "gate-front-door"), ACL_GATE)
    record = AccessEventRecord(datetime.now(UTC), ACL_GATE, "E001", 0.95, "granted", "GRANTED", event_uid="e" * 32)
    try:
        assert feed.link.wait_connected(5) and publisher.link.wait_connected(5)  # type: ignore[union-attr]
        publish_as(port, "reader-front-door", f"{prefix}/claim", READER.sign(ACL_GATE, "E1"))
        assert wait_until(lambda: box.received == 1, 5)  # the reader's claim reaches the gate
        for user in (*OTHER_USERS, "gate-front-door"):  # even signed with the real secret: the broker drops them
            publish_as(port, user, f"{prefix}/claim", READER.sign(ACL_GATE, f"forged-by-{user}"))
        publish_as(port, "reader-front-door", f"{prefix}/claim", READER.sign(ACL_GATE, "E2"))
        assert wait_until(lambda: box.received == 2, 5)
        assert box.current().employee_id == "E2" and not box.refused  # type: ignore[union-attr]
        publisher.publish(record)
        assert wait_until(lambda: bool(watcher.payloads(f"{prefix}/events")), 5)
        assert retained(port, f"{prefix}/status", user="homeassistant") == ONLINE  # the gate's own
    finally:
        feed.close()  # type: ignore[union-attr]
        publisher.close()
    assert wait_until(lambda: watcher.payloads(f"{prefix}/status")[-1:] == [OFFLINE], 5)
    watcher.close()
    snoop.close()
    assert [event["event_uid"] for event in watcher.events(f"{prefix}/events")] == [record.event_uid]
    assert watcher.payloads(f"{prefix}/status") == [ONLINE, OFFLINE]  # the gate's, none of the forged ones
    assert watcher.payloads(f"{prefix}/claim") == [] and snoop.payloads(f"{prefix}/claim") == []  # claims unread


def test_mqtt_actuator_without_a_broker_fails_within_its_timeout() -> None:
    actuator = build_actuator(door_settings(1.0), mqtt_settings(free_port()), "test-door")  # nobody listens
    try:
        started = time.monotonic()
        assert actuator.open(REQUEST) is DoorOutcome.FAILED
        assert time.monotonic() - started < 1.5
    finally:
        actuator.close()


def test_mqtt_actuator_a_broker_that_does_not_acknowledge_times_out(broker: Broker) -> None:
    actuator = build_actuator(door_settings(1.0), mqtt_settings(broker.port), "test-door")
    try:
        assert actuator.open(REQUEST) is DoorOutcome.OPENED
        broker.process.send_signal(signal.SIGSTOP)  # the connection stays up, nothing answers
        started = time.monotonic()
        assert actuator.open(REQUEST) is DoorOutcome.TIMED_OUT
        assert time.monotonic() - started < 3.0  # 1 s waiting for the PUBACK, then the connection is replaced
    finally:
        broker.process.send_signal(signal.SIGCONT)
        actuator.close()


def test_mqtt_config_refuses_a_door_without_topic_a_wildcard_and_a_missing_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with pytest.raises(FaceGateError, match=r"actuator: .*needs topic"):
        settings_from_dict({"actuator": {"kind": "mqtt"}})
    with pytest.raises(FaceGateError, match=r"mqtt\.topic_prefix: .*'site/#'"):
        settings_from_dict({"mqtt": {"topic_prefix": "site/#"}})
    with pytest.raises(FaceGateError, match=r"mqtt\.password: unknown key"):
        settings_from_dict({"mqtt": {"password": "secret"}})  # never in the file: password_env names a variable
    monkeypatch.delenv("FACEGATE_TEST_MQTT_PASSWORD", raising=False)
    with pytest.raises(FaceGateError, match="mqtt.password_env: environment variable FACEGATE_TEST_MQTT_PASSWORD"):
        MqttLink(MqttSettings(password_env="FACEGATE_TEST_MQTT_PASSWORD"), "test")
    with pytest.raises(FaceGateError, match="needs the \\[mqtt\\] broker settings"):
        build_actuator(door_settings(1.0))


def test_event_publisher_status_is_online_retained_then_offline_after_a_clean_stop(broker: Broker) -> None:
    publisher = EventPublisher(mqtt_settings(broker.port), "test-door")
    try:
        assert publisher.link.wait_connected(5)
        assert wait_until(lambda: retained(broker.port, "facegate/test-door/status") == ONLINE, 5)
    finally:
        publisher.close()
    assert retained(broker.port, "facegate/test-door/status") == OFFLINE


def test_a_gate_process_that_dies_is_declared_offline_by_its_last_will(broker: Broker) -> None:
    child = f"""
import sys, time
from gate.config import MqttSettings
from gate.door.mqtt_events import EventPublisher
publisher = EventPublisher(MqttSettings(enabled=True, host="127.0.0.1", port={broker.port}), "test-door")
assert publisher.link.wait_connected(5)
print("up", flush=True)
time.sleep(60)
"""
    listener = Subscriber(broker.port, "facegate/test-door/status")
    process = subprocess.Popen([sys.executable, "-c", child], stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "up"
        assert wait_until(lambda: ONLINE in listener.payloads("facegate/test-door/status"), 5)
        process.kill()  # no DISCONNECT: the broker publishes the will
        process.wait(10)
        assert wait_until(lambda: listener.payloads("facegate/test-door/status")[-1:] == [OFFLINE], 5)
    finally:
        process.kill()
        listener.close()
    assert retained(broker.port, "facegate/test-door/status") == OFFLINE


def test_publishing_while_the_broker_is_away_neither_raises_nor_waits() -> None:
    publisher = EventPublisher(mqtt_settings(free_port()), "test-door")  # nobody listens
    record = AccessEventRecord(datetime.now(UTC), "test-door", None, 0.2, "denied", "BELOW_THRESHOLD")
    try:
        started = time.monotonic()
        for _ in range(500):
            publisher.publish(record)
        assert time.monotonic() - started < 1.0  # queued in memory (QoS 1), sent once a broker answers
        assert publisher.dropped == 0
    finally:
        publisher.close()


def mqtt_gate_settings(tmp_path: Path, port: int, cooldown_s: float) -> Settings:
    """test_loop's gate; threshold -1: every match is a vote (the untrained model's scores mean nothing)."""
    decision = {"track_timeout_s": 0.5, "votes_needed": 2, "window": 3, "cooldown_s": cooldown_s}
    return settings_from_dict(
        {
            "camera": {"gate_id": "test-door"},
            "decision": {**decision, "threshold": -1.0, "allow_loose_threshold": True},
            "database": {"url": f"sqlite:///{tmp_path / 'gate.db'}"},
            "gallery": {"index_path": str(tmp_path / "gallery.faiss")},
            "mqtt": mqtt_settings(port).model_dump(),
        }
    )


def open_gate(settings: Settings, embedder: Embedder, pipeline: FacePipeline, enrol: tuple[str, Path]) -> Runtime:
    """The gate's parts, with one person enrolled from one photo."""
    database = Database(settings.database_url)
    index_path = settings.resolve(settings.gallery.index_path)
    gallery = Gallery.open(
        database, settings.gallery, index_path, embedder.model_id, embedder.card.embedding_size, embedder.scorer
    )
    runtime = Runtime(settings, embedder, pipeline, database, gallery)
    add_person(runtime, "e1", enrol[0], [enrol[1]], threshold=0.99)
    return runtime


def test_run_gate_publishes_one_message_per_decision_between_online_and_offline(
    tmp_path, broker, embedder, pipeline, people
) -> None:
    photos = [(name, load_image(paths[0])) for name, paths in people]
    path, _ = render_turnstile(photos, tmp_path / "walk.mp4", SPEC)  # enrolled person, then a stranger
    settings = mqtt_gate_settings(tmp_path, broker.port, cooldown_s=60.0)
    runtime = open_gate(settings, embedder, pipeline, enrol=(people[0][0], people[0][1][1]))
    database = runtime.database
    listener = Subscriber(broker.port, "facegate/test-door/#")
    try:
        summary = run_gate(runtime, VideoFileSource(path), Doors())
        assert wait_until(lambda: listener.payloads("facegate/test-door/status")[-1:] == [OFFLINE], 5)
    finally:
        listener.close()
    assert [d.verdict for d in summary.decisions] == [Verdict.GRANTED, Verdict.COOLDOWN]
    with listener.lock:
        order = [payload if topic.endswith("status") else "event" for topic, payload, _ in listener.messages]
    assert order == [ONLINE, "event", "event", OFFLINE]  # one message per decision, while the gate was online
    events = listener.events("facegate/test-door/events")
    assert all(set(event) >= EVENT_FIELDS and event["gate_id"] == "test-door" for event in events)
    assert not any("crop" in event for event in events)  # the face stays in the database
    assert [(e["employee_id"], e["decision"], e["reason"], e["door"]) for e in events] == [
        ("e1", "granted", "GRANTED", "opened"),  # the grant's final state: published once the door opened
        ("e1", "denied", "COOLDOWN", None),
    ]
    recorded = {e.event_uid: e for e in database.events(limit=10)}
    for event in events:
        assert event["score"] == pytest.approx(recorded[event["event_uid"]].score)
        assert event["time"].endswith("+00:00")


def test_a_lost_broker_does_not_stop_the_gate_and_publishing_resumes_when_it_returns(
    tmp_path, broker, embedder, pipeline, people
) -> None:
    """QoS 1 between the gate and the broker: paho holds every event in memory while the broker is away (up to
    MAX_QUEUED) and sends it, perhaps twice, once it is back; the broker keeps it for a subscriber with a
    persistent session. Not guaranteed: events of a gate process that ends while its broker is away, or of a
    broker without persistence that restarts, are lost to MQTT; the database (or journal) has every one."""
    photos = [(name, load_image(paths[0])) for name, paths in people] * 3  # six walks
    path, walks = render_turnstile(photos, tmp_path / "walks.mp4", SPEC)
    settings = mqtt_gate_settings(tmp_path, broker.port, cooldown_s=0.0)
    runtime = open_gate(settings, embedder, pipeline, enrol=(people[0][0], people[0][1][1]))
    database = runtime.database
    listener = Subscriber(broker.port, "facegate/test-door/events", client_id="building-system")
    publisher = EventPublisher(settings.mqtt, "test-door")
    loop = GateLoop(runtime, Doors(), publisher=publisher)
    before: set[str] = set()
    try:
        for frame in VideoFileSource(path).frames():
            if frame.index == walks[2].first_frame:
                before = {e.event_uid for e in database.events(limit=100)}
                broker.stop()  # the broker goes away: walks 2 and 3 are decided without it
                assert wait_until(lambda: not publisher.link.connected.is_set(), 5)
            if frame.index == walks[4].first_frame:
                broker.start()
                assert wait_until(lambda: publisher.link.connected.is_set() and listener.subscribed.is_set(), 10)
                during = {e.event_uid for e in database.events(limit=100)} - before
            loop.step(frame)
        loop.finish()
    finally:
        publisher.close()
    recorded = {e.event_uid for e in database.events(limit=100)}
    after = recorded - before - during
    assert len(loop.decisions) >= 6 and all(d.verdict == Verdict.GRANTED for d in loop.decisions)  # every walk
    assert len(recorded) == len(loop.decisions)  # every decision is in the database, the broker or not
    assert before and during and after, (walks, [(r.first_frame, r.decision_frame) for r in loop.reports.values()])

    def received() -> set[str]:
        return {e["event_uid"] for e in listener.events("facegate/test-door/events")}

    assert wait_until(lambda: after <= received(), 10), "publishing did not resume after the restart"
    assert wait_until(lambda: during <= received(), 10), "events queued while the broker was away were lost"
    listener.close()
    assert before <= received()


class CountingDoors(Doors):
    """A door that always opens and remembers for whom."""

    def __init__(self) -> None:
        self.opened: list[DoorRequest] = []

    def open(self, request: DoorRequest) -> DoorOutcome:
        self.opened.append(request)
        return DoorOutcome.OPENED


def post_claim(listen: str, payload: bytes) -> int:
    request = urllib.request.Request(f"http://{listen}/claim", data=payload, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


class BadgeReads:
    """What is sent at the first frame of each walk of the enrolled person, each claim signed as it is sent (the
    reader's clock): forgeries at the first walk (over MQTT also a claim signed with the real secret, from a broker
    user other than the reader), the reader's claim and a flood of forged ones at the second, that same claim
    replayed at the third, a fresh one at the fourth. `at(frame)` gives (broker user, claim) pairs."""

    READER_USER = "reader-front-door"

    def __init__(self, walks: list, feed_kind: str) -> None:
        self.starts = {walk.first_frame: number for number, walk in enumerate(walks)}
        self.feed_kind = feed_kind
        self.first = b""

    def at(self, frame_index: int) -> list[tuple[str, bytes]]:
        walk = self.starts.get(frame_index)
        if walk is None:
            return []
        if walk == 0:
            stale = READER.sign(ACL_GATE, "e1", now=time.time() - 60)
            forged = [b'{"employee_id": "e1"}', FORGER.sign(ACL_GATE, "e1"), stale]
            other = [("homeassistant", READER.sign(ACL_GATE, "e1"))] if self.feed_kind == "mqtt" else []
            return [(self.READER_USER, claim) for claim in forged] + other
        if walk == 1:
            self.first = READER.sign(ACL_GATE, "e1")
            flood = [FORGER.sign(ACL_GATE, f"x{i}") for i in range(20)]
            return [(self.READER_USER, claim) for claim in (self.first, *flood)]
        return [(self.READER_USER, self.first if walk == 2 else READER.sign(ACL_GATE, "e1"))]


@pytest.mark.parametrize("feed_kind", ["http", "mqtt"])
def test_forged_claims_never_open_the_door_and_the_readers_signed_claims_do(
    feed_kind, request, tmp_path, embedder, pipeline, people, reader_secret
) -> None:
    """Card + face with claims over HTTP, or over a real mosquitto with the recipe's ACL; the gate
    started as `facegate run` starts it (open_loop: its claim feed and MQTT publisher from the settings)."""
    name, paths = people[0]
    video, walks = render_turnstile([(name, load_image(paths[0]))] * 4, tmp_path / "walks.mp4", SPEC)
    base = mqtt_gate_settings(tmp_path, free_port(), cooldown_s=0.0)
    if feed_kind == "mqtt":
        port = request.getfixturevalue("acl_broker").port
        sent_as = {user: broker_user(port, user) for user in ("reader-front-door", "homeassistant")}
        card = card_settings(ACL_GATE, broker_user(port, "gate-front-door"))
    else:
        mqtt = base.mqtt.model_copy(update={"enabled": False})
        card = card_settings(ACL_GATE, mqtt, claims="http", listen=f"127.0.0.1:{free_port()}")
    settings = base.model_copy(update={"camera": card.camera, "card": card.card, "mqtt": card.mqtt})
    runtime = open_gate(settings, embedder, pipeline, enrol=(name, paths[1]))
    doors, reads, source = CountingDoors(), BadgeReads(walks, feed_kind), VideoFileSource(video)
    arrived = 0  # claims that reach the gate, each checked before the walk goes on
    with ExitStack() as cleanup:
        loop = open_loop(cleanup, runtime, doors, source)
        for frame in source.frames():
            for user, payload in reads.at(frame.index):
                if feed_kind == "http":
                    post_claim(settings.card.listen, payload)
                else:
                    send_claim(sent_as[user], ACL_GATE, payload)
                arrived += user == BadgeReads.READER_USER
            checked = lambda expected=arrived: loop.claims.received + loop.claims.refused.total() == expected  # noqa: E731
            assert wait_until(checked, 5), loop.claims.refused
            loop.step(frame)
        end_loop(loop)
    assert loop.claims.refused == {"unsigned": 1, "bad_mac": 21, "stale": 1, "replayed": 1}
    assert loop.claims.received == 2 and [r.person_id for r in doors.opened] == ["e1", "e1"]
    granted = [r.decision_frame for r in loop.reports.values() if r.decision is not None]
    assert [next(i for i, w in enumerate(walks) if w.first_frame <= f <= w.last_frame + 1) for f in granted] == [1, 3]
    events = sorted(runtime.database.events(limit=100), key=lambda e: e.time)
    grants = [(e.reason, e.claimed_id, e.door) for e in events if e.reason != "CLAIM_REFUSED"]
    assert grants == [("GRANTED", "e1", "opened")] * 2
    refusals = [e for e in events if e.reason == "CLAIM_REFUSED"]  # on the record, at most one every 10 s
    assert refusals and all(e.decision == "denied" and e.claimed_id is None for e in refusals)
    assert loop.summary(stopped_by_signal=False).tally.claims_refused == 24
