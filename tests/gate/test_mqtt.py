"""MQTT against a real broker on loopback (Debian's mosquitto, started here): the door actuator, the event
publisher with its retained status and last will, and a gate run that loses its broker in the middle."""

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
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import paho.mqtt.client as paho
import paho.mqtt.publish as publish
import pytest
from facegate_process import free_port
from paho.mqtt.enums import CallbackAPIVersion

from enrollment.people import add_person
from evaluation.turnstile import TurnstileSpec, render_turnstile
from gate.actuators import DoorOutcome, DoorRequest, HoldsNothing, build_actuator
from gate.claims import ClaimBox, open_claims
from gate.config import ActuatorSettings, CameraSettings, CardSettings, MqttSettings, Settings, settings_from_dict
from gate.daemon import GateLoop, run_gate
from gate.embedder import Embedder
from gate.errors import FaceGateError
from gate.gallery import Gallery
from gate.imageio import load_image
from gate.mqtt import OFFLINE, ONLINE, EventPublisher, MqttClaims, MqttLink
from gate.pipeline import FacePipeline
from gate.policy import Verdict
from gate.runtime import Runtime
from gate.sources import VideoFileSource
from gate.store import AccessEventRecord, Database

pytestmark = pytest.mark.slow  # every test starts a broker process

MOSQUITTO = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if Path("/usr/sbin/mosquitto").exists() else None)
REQUEST = DoorRequest("test-door", "e1", "Ada Lovelace", 0.91)
EVENT_FIELDS = {"gate_id", "employee_id", "decision", "reason", "score", "door", "time", "event_uid"}
SPEC = TurnstileSpec(width=320, height=240, fps=10, walk_s=1.5, gap_s=1.0, seed=1)  # as tests/gate/test_daemon.py


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

    def __init__(self, folder: Path) -> None:
        self.port = free_port()
        self.config = folder / "mosquitto.conf"
        self.config.write_text(
            # `user`: as root, mosquitto would switch to user mosquitto, who may not write the persistence file here
            f"listener {self.port} 127.0.0.1\nallow_anonymous true\nuser {getpass.getuser()}\n"
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


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    if MOSQUITTO is None:
        pytest.skip("mosquitto not installed (Debian: apt-get install mosquitto; .ci/run installs it)")
    folder = tmp_path / "broker"
    folder.mkdir()
    running = Broker(folder)
    running.start()
    yield running
    if running.process is not None:
        running.process.send_signal(signal.SIGCONT)  # in case a test left it stopped
    running.stop()


class Subscriber:
    """A paho client collecting every message under `topic` as (topic, payload, retained); with a fixed
    `client_id` its session (subscription and queued QoS 1 messages) outlives a disconnection."""

    def __init__(self, port: int, topic: str, client_id: str = "") -> None:
        self.messages: list[tuple[str, str, bool]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.topic = topic
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=not client_id)
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


def retained(port: int, topic: str) -> str | None:
    """The retained payload a newcomer gets on `topic` (None when nothing is retained)."""
    newcomer = Subscriber(port, topic)
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


def test_badge_claims_arrive_over_mqtt_as_text_or_json_and_bad_or_retained_ones_are_ignored(broker: Broker) -> None:
    topic, server = "facegate/test-door/claim", {"hostname": "127.0.0.1", "port": broker.port, "qos": 1}
    publish.single(topic, "E-OLD", retain=True, **server)  # an old read the broker kept: not a badge shown now
    box = ClaimBox(time.monotonic)
    card = Settings(card=CardSettings(claims="mqtt"), mqtt=mqtt_settings(broker.port))
    feed = open_claims(card.model_copy(update={"camera": CameraSettings(gate_id="test-door")}), box)
    try:
        assert isinstance(feed, MqttClaims) and feed.link.wait_connected(5)
        time.sleep(0.5)
        assert box.current() is None
        publish.single(topic, "E1", **server)
        assert wait_until(lambda: getattr(box.current(), "employee_id", None) == "E1", 5)
        publish.single(topic, '{"employee_id": "E2"}', **server)
        assert wait_until(lambda: getattr(box.current(), "employee_id", None) == "E2", 5)
        for bad in (b" ", b"\xff\xfe", b'{"id": 3}', b"E\x003", b"x" * 100):
            publish.single(topic, bad, **server)
        time.sleep(0.5)
        assert (box.current().employee_id, box.received) == ("E2", 2)  # type: ignore[union-attr]
    finally:
        feed.close()  # type: ignore[union-attr]


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
from gate.mqtt import EventPublisher
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
    """test_daemon's gate; threshold -1: every match is a vote (the untrained model's scores mean nothing)."""
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
