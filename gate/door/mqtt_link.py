"""MQTT transport: one paho client per job on its own network thread (reconnects with backoff, a last will), the
gate's client ids and topics, and the broker password from the environment. The jobs on it are job-named modules:
mqtt_door (the door actuator), mqtt_claims (badge claims in), mqtt_events (every decision out)."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from gate.config import MqttSettings
from gate.errors import FaceGateError

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
        # paho's stubs say int; it sleeps any number of seconds, and a test's broker comes back in less than one
        client.reconnect_delay_set(min(1.0, settings.reconnect_max_s), settings.reconnect_max_s)  # type: ignore[arg-type]
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
