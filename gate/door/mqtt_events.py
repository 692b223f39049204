"""Every decision out to the building over MQTT: each access event as JSON on <prefix>/<gate_id>/events, and the
gate's status retained on <prefix>/<gate_id>/status."""

from __future__ import annotations

import json
import logging

import paho.mqtt.client as paho

from gate.config import MqttSettings
from gate.door.mqtt_link import MAX_QUEUED, OFFLINE, ONLINE, MqttLink, client_id, gate_topic
from gate.store.events import AccessEventRecord

log = logging.getLogger(__name__)


def event_payload(record: AccessEventRecord) -> str:
    """An access event as the JSON published: its listed fields (no face crop), the time in ISO 8601 (UTC)."""
    return json.dumps(record.to_json(), sort_keys=True)


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
