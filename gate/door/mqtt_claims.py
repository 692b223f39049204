"""Badge claims over MQTT: the gate's subscription to <prefix>/<gate_id>/claim, and `send_claim` for a reader (or
`facegate card claim`) publishing one."""

from __future__ import annotations

import contextlib
import logging
import os

import paho.mqtt.client as paho

from gate.config import MqttSettings
from gate.door.claims import ClaimBox, ClaimRefused, ClaimVerifier
from gate.door.mqtt_link import QOS, MqttLink, client_id, gate_topic
from gate.errors import FaceGateError

log = logging.getLogger(__name__)


class MqttClaims:
    """Badge claims from <prefix>/<gate_id>/claim (QoS 1, subscribed again at every reconnection): signed claims
    (gate.door.claims), each checked by `verifier` before it reaches the box. A retained message (an old claim the
    broker kept) and a refused one are logged and dropped. The broker's ACL decides who may publish there at all
    (docs/research/mqtt-acl.md); the signature decides which claims count."""

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
            self.verifier.admit(bytes(message.payload), self._box, f"MQTT {self.topic}")

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
