"""MQTT out to the building: one paho client per job on its own network thread (reconnects with backoff, a last
will), the `mqtt` door actuator, and the publisher of every decision and of the gate's retained status."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gate.config import ActuatorSettings, MqttSettings
from gate.door.actuators import DoorOutcome, DoorRequest
from gate.door.claims import ClaimBox, ClaimRefused, ClaimVerifier
from gate.errors import FaceGateError
from gate.store.database import AccessEventRecord

log = logging.getLogger(__name__)

QOS = 1  # at least once: the broker acknowledges every message (PUBACK); paho re-sends what it has not
ONLINE, OFFLINE = "online", "offline"  # the status payloads (Home Assistant's availability defaults)
MAX_QUEUED = 10_000  # messages held in memory while the broker is away; newer ones are dropped (the database has all)
CLOSE_WAIT_S = 3.0  # at a clean stop, how long the "offline" status (and what was queued before it) may take


def client_id(settings: MqttSettings, gate_id: str, suffix: str = "") -> str:
    """The configured client id, else facegate-<gate_id>; `suffix` keeps a second connection of the gate apart."""
    return (settings.client_id or f"facegate-{gate_id}") + suffix


def gate_topic(settings: MqttSettings, gate_id: str, leaf: str) -> str:
    """<topic_prefix>/<gate_id>/<leaf>, e.g. facegate/front-door/events."""
    return f"{settings.topic_prefix}/{gate_id}/{leaf}"


def broker_password(settings: MqttSettings) -> str | None:
    """The password from the environment variable named by `password_env` (None without one)."""
    if not settings.password_env:
        return None
    password = os.environ.get(settings.password_env)
    if password is None:
        raise FaceGateError(f"mqtt.password_env: environment variable {settings.password_env} is not set")
    return password


def event_payload(record: AccessEventRecord) -> str:
    """An access event as the JSON published: its listed fields (no face crop), the time in ISO 8601 (UTC)."""
    return json.dumps(record.to_json(), sort_keys=True)


class MqttLink:
    """One connection to the broker on paho's network thread: connected in the background, retried after 1 s
    doubling to `reconnect_max_s` when lost; QoS 1 messages published meanwhile wait in memory (MAX_QUEUED).
    `will`: (topic, payload) the broker publishes, retained, if the connection dies without a clean stop.
    `on_connect(link)` runs on the network thread after every (re)connection, `on_message(message)` for every
    message of a subscription."""

    def __init__(
        self,
        settings: MqttSettings,
        client_id: str,
        will: tuple[str, str] | None = None,
        on_connect: Callable[[MqttLink], None] | None = None,
        on_message: Callable[[paho.MQTTMessage], None] | None = None,
    ) -> None:
        self.address = f"{settings.host}:{settings.port}"
        self.connected = threading.Event()
        self.closing = False
        self._on_connect = on_connect
        client = paho.Client(CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv311)
        username, password = settings.username or None, broker_password(settings)
        if username is not None or password is not None:
            client.username_pw_set(username or "", password)
        if settings.tls:
            client.tls_set()
        if will is not None:
            client.will_set(will[0], will[1], qos=QOS, retain=True)
        client.reconnect_delay_set(min(1.0, settings.reconnect_max_s), settings.reconnect_max_s)
        client.max_queued_messages_set(MAX_QUEUED)
        client.on_connect = self._connected
        client.on_disconnect = self._disconnected
        if on_message is not None:
            client.on_message = lambda _client, _userdata, message: on_message(message)
        self.client = client  # before the network thread starts: its callbacks use it
        client.connect_async(settings.host, settings.port, keepalive=settings.keepalive_s)
        client.loop_start()

    def _connected(
        self, _client: paho.Client, _userdata: object, _flags: object, reason: object, _props: object
    ) -> None:
        if getattr(reason, "is_failure", False):
            log.error("MQTT broker %s refused the connection: %s", self.address, reason)
            return
        log.info("MQTT broker %s connected", self.address)
        self.connected.set()
        if self._on_connect is not None:
            self._on_connect(self)

    def _disconnected(
        self, _client: paho.Client, _userdata: object, _flags: object, reason: object, _props: object
    ) -> None:
        if self.connected.is_set() and not self.closing:
            log.warning("MQTT broker %s lost (%s): retrying, messages wait in memory", self.address, reason)
        self.connected.clear()

    def wait_connected(self, timeout_s: float) -> bool:
        return self.connected.wait(timeout_s)

    def publish(self, topic: str, payload: str, retain: bool = False) -> paho.MQTTMessageInfo:
        """Hand a QoS 1 message to paho (sent now, or queued until the broker is back); never waits."""
        return self.client.publish(topic, payload, qos=QOS, retain=retain)

    def close(self, last: tuple[str, str] | None = None) -> None:
        """A clean stop: `last` (topic, payload) published retained first when connected (waited for up to
        CLOSE_WAIT_S), then DISCONNECT, so the broker does not publish the will; messages still queued are lost."""
        if last is not None and self.connected.is_set():
            info = self.publish(*last, retain=True)
            try:
                info.wait_for_publish(CLOSE_WAIT_S)
            except (RuntimeError, ValueError) as error:
                log.warning("MQTT broker %s: %s not published at stop (%s)", self.address, last[0], error)
        self.closing = True
        self.client.disconnect()
        self.client.loop_stop()
        self.connected.clear()


class EventPublisher:
    """Every decision as JSON on <prefix>/<gate_id>/events (QoS 1); the gate's status retained on .../status:
    "online" at each connection, "offline" at a clean stop and, from the broker, as the last will.
    `publish` never raises and never waits for the broker: the gate decides on while the broker is away."""

    def __init__(self, settings: MqttSettings, gate_id: str) -> None:
        self.events_topic = gate_topic(settings, gate_id, "events")
        self.status_topic = gate_topic(settings, gate_id, "status")
        self.dropped = 0  # events paho refused (its queue full while the broker was away)
        self.link = MqttLink(
            settings, client_id(settings, gate_id), will=(self.status_topic, OFFLINE), on_connect=self._online
        )

    def _online(self, link: MqttLink) -> None:
        link.publish(self.status_topic, ONLINE, retain=True)  # the link: self.link may not be set yet

    def publish(self, record: AccessEventRecord) -> None:
        """Queue one access event for the broker; a refusal is logged and counted, never raised."""
        try:
            info = self.link.publish(self.events_topic, event_payload(record))
        except (ValueError, TypeError, OSError) as error:
            self.dropped += 1
            log.error("access event %s not published: %s", record.event_uid, error)
            return
        if info.rc == paho.MQTT_ERR_QUEUE_SIZE:
            self.dropped += 1
            log.warning(
                "access event %s not published: %d events wait for the broker already", record.event_uid, MAX_QUEUED
            )

    def close(self) -> None:
        """Status "offline" (retained), then a clean disconnect."""
        self.link.close(last=(self.status_topic, OFFLINE))


class MqttClaims:
    """Badge claims from <prefix>/<gate_id>/claim (QoS 1, subscribed again at every reconnection): signed claims
    (gate.door.claims), each checked by `verifier` before it reaches the box. A retained message (an old claim the
    broker kept) and a refused one are logged and dropped. The broker's ACL decides who may publish there at all
    (docs/mqtt-acl.md); the signature decides which claims count."""

    def __init__(self, settings: MqttSettings, gate_id: str, box: ClaimBox, verifier: ClaimVerifier) -> None:
        self.topic = gate_topic(settings, gate_id, "claim")
        self._box, self.verifier = box, verifier
        suffix = "-claims"
        self.link = MqttLink(
            settings, client_id(settings, gate_id, suffix), on_connect=self._subscribe, on_message=self._received
        )
        log.info("badge claims accepted on MQTT topic %s (signed by: %s)", self.topic, verifier.readers)

    def _subscribe(self, link: MqttLink) -> None:
        link.client.subscribe(self.topic, qos=QOS)

    def _received(self, message: paho.MQTTMessage) -> None:
        if message.retain:
            log.warning("badge claim on %s ignored: retained by the broker, so not a badge read now", self.topic)
            return
        with contextlib.suppress(ClaimRefused):  # counted and logged by the verifier; MQTT has no answer to give
            self.verifier.admit(message.payload, self._box, f"MQTT {self.topic}")

    def close(self) -> None:
        self.link.close()


def send_claim(settings: MqttSettings, gate_id: str, payload: bytes, timeout_s: float = 5.0) -> None:
    """Publish a signed claim to <prefix>/<gate_id>/claim as a reader would (QoS 1), waiting for the broker's
    acknowledgement; a FaceGateError when none comes within `timeout_s`."""
    topic = gate_topic(settings, gate_id, "claim")
    link = MqttLink(settings, client_id(settings, gate_id, f"-reader-{os.getpid()}"))
    try:
        if not link.wait_connected(timeout_s):
            raise FaceGateError(
                f"MQTT broker {link.address} not reachable (or refused the login) within {timeout_s:g} s"
            )
        info = link.client.publish(topic, payload, qos=QOS)
        try:
            info.wait_for_publish(timeout_s)
        except (RuntimeError, ValueError) as error:
            raise FaceGateError(f"MQTT broker {link.address}: the claim was not sent ({error})") from None
        if not info.is_published():
            raise FaceGateError(f"MQTT broker {link.address} did not acknowledge the claim on {topic}")
    finally:
        link.close()


class MqttActuator:
    """Opens the door by publishing the DoorRequest as JSON (plus its `time`) to `topic`, QoS 1: OPENED once the
    broker acknowledges it within timeout_s, FAILED when the broker cannot be reached in that time, TIMED_OUT when
    no acknowledgement came. A request not acknowledged is dropped with its connection, never re-sent later
    (a door must not open minutes after the person left); a door controller may also check `time`."""

    def __init__(self, settings: ActuatorSettings, mqtt: MqttSettings, gate_id: str) -> None:
        self.topic, self.timeout_s = settings.topic, settings.timeout_s
        self._mqtt, self._client_id = mqtt, client_id(mqtt, gate_id, "-door")
        self.link = MqttLink(mqtt, self._client_id)

    def open(self, request: DoorRequest) -> DoorOutcome:
        deadline = time.monotonic() + self.timeout_s
        if not self.link.wait_connected(self.timeout_s):
            log.error("actuator: MQTT broker %s not reachable within %.1f s", self.link.address, self.timeout_s)
            return DoorOutcome.FAILED
        payload = json.dumps({**asdict(request), "time": datetime.now(UTC).isoformat()})
        try:
            info = self.link.publish(self.topic, payload)
            info.wait_for_publish(max(0.0, deadline - time.monotonic()))
            acknowledged = info.is_published()
        except (RuntimeError, ValueError) as error:
            log.error("actuator: door request to %s not sent: %s", self.topic, error)
            self._renew()
            return DoorOutcome.FAILED
        if not acknowledged:
            log.error("actuator: MQTT broker %s did not acknowledge within %.1f s", self.link.address, self.timeout_s)
            self._renew()
            return DoorOutcome.TIMED_OUT
        return DoorOutcome.OPENED

    def _renew(self) -> None:
        """A fresh connection: the old one's unacknowledged request dies with it."""
        self.link.close()
        self.link = MqttLink(self._mqtt, self._client_id)

    def close(self) -> None:
        self.link.close()
