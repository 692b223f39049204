"""The `mqtt` door actuator: a grant published as a door request to the configured topic, QoS 1."""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict
from datetime import UTC, datetime

from gate.config import ActuatorSettings, MqttSettings
from gate.door.mqtt_link import MqttLink, client_id
from gate.door.requests import DoorOutcome, DoorRequest

log = logging.getLogger(__name__)


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
