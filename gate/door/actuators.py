"""Actuators open the door on a grant: log, run a command, POST JSON, publish it over MQTT, or pulse a relay (a
Shelly-style HTTP relay, gate/door/http_relay.py; a USB/serial board, gate/door/serial_relay.py); each says what
happened (opened, failed, timed out); failures are logged, never raised."""

from __future__ import annotations

import json
import logging
import subprocess
from collections.abc import Callable
from dataclasses import asdict

from gate.config import ActuatorSettings, CameraSettings, MqttSettings
from gate.door.requests import Actuator, DoorOutcome, DoorRequest
from gate.errors import FaceGateError

log = logging.getLogger(__name__)


class HoldsNothing:
    """An actuator that keeps no connection between doors: nothing to release."""

    def close(self) -> None:
        return None


class LogActuator(HoldsNothing):
    """Only logs the grant (the default; for trials and for doors driven by reading the event table)."""

    def open(self, request: DoorRequest) -> DoorOutcome:
        log.info(
            "door %s opens for %s (%s), score %.3f",
            request.gate_id,
            request.name,
            request.person_id,
            request.score,
        )
        return DoorOutcome.OPENED


class ShellActuator(HoldsNothing):
    """Runs `command` (an argv list, no shell) with {person_id}, {name}, {gate_id}, {score} filled in."""

    def __init__(self, settings: ActuatorSettings) -> None:
        self.command = list(settings.command)
        self.timeout_s = settings.timeout_s

    def argv(self, request: DoorRequest) -> list[str]:
        fields = {**asdict(request), "score": f"{request.score:.4f}"}
        out = []
        for arg in self.command:
            for key, value in fields.items():
                arg = arg.replace("{" + key + "}", str(value))
            out.append(arg)
        return out

    def open(self, request: DoorRequest) -> DoorOutcome:
        argv = self.argv(request)
        try:
            result = subprocess.run(argv, capture_output=True, timeout=self.timeout_s, check=False)
        except subprocess.TimeoutExpired:
            log.error("actuator command %s did not finish within %.1f s", argv[0], self.timeout_s)
            return DoorOutcome.TIMED_OUT
        except OSError as error:
            log.error("actuator command %s could not run: %s", argv[0], error)
            return DoorOutcome.FAILED
        if result.returncode != 0:
            stderr = result.stderr.decode(errors="replace").strip()[-200:]
            log.error("actuator command %s exited with %d: %s", argv[0], result.returncode, stderr)
            return DoorOutcome.FAILED
        return DoorOutcome.OPENED


class HttpActuator:
    """POSTs the DoorRequest as JSON to `url` over httpx; any 2xx answer is success. A redirect is an answer, not
    followed (a 3xx is failed: following it would turn the POST into a GET that another page may answer 200); no
    proxy (nor .netrc) from the environment: the door's POST goes to `url` itself."""

    def __init__(self, settings: ActuatorSettings) -> None:
        import httpx  # loaded only for the kinds that speak HTTP

        self.url = settings.url
        self.timeout_s = settings.timeout_s
        self._client = httpx.Client(follow_redirects=False, timeout=settings.timeout_s, trust_env=False)

    def open(self, request: DoorRequest) -> DoorOutcome:
        import httpx

        body = json.dumps(asdict(request)).encode()
        try:
            with self._client.stream(
                "POST", self.url, content=body, headers={"Content-Type": "application/json"}
            ) as response:
                status, reason = response.status_code, response.reason_phrase  # the body is never read
        except httpx.TimeoutException:
            log.error("actuator %s did not answer within %.1f s", self.url, self.timeout_s)
            return DoorOutcome.TIMED_OUT
        except httpx.HTTPError as error:
            log.error("actuator %s unreachable: %s", self.url, error)
            return DoorOutcome.FAILED
        if not 200 <= status < 300:
            log.error("actuator %s answered %d %s", self.url, status, reason)
            return DoorOutcome.FAILED
        return DoorOutcome.OPENED

    def close(self) -> None:
        self._client.close()


def _mqtt_actuator(settings: ActuatorSettings, mqtt: MqttSettings, gate_id: str) -> Actuator:
    from gate.door.mqtt_door import MqttActuator  # paho is loaded only for this kind

    return MqttActuator(settings, mqtt, gate_id)


def _http_relay(settings: ActuatorSettings, _mqtt: MqttSettings, _gate_id: str) -> Actuator:
    from gate.door.http_relay import HttpRelayActuator  # reads the relay's password now: a missing one stops the start

    return HttpRelayActuator(settings)


def _serial_relay(settings: ActuatorSettings, _mqtt: MqttSettings, _gate_id: str) -> Actuator:
    from gate.door.serial_relay import SerialRelayActuator  # pyserial is loaded only for this kind

    return SerialRelayActuator(settings)


# each kind's factory takes the [actuator] settings, the [mqtt] broker and the gate's id
ACTUATORS: dict[str, Callable[[ActuatorSettings, MqttSettings, str], Actuator]] = {
    "log": lambda _settings, _mqtt, _gate_id: LogActuator(),
    "shell": lambda settings, _mqtt, _gate_id: ShellActuator(settings),
    "http": lambda settings, _mqtt, _gate_id: HttpActuator(settings),
    "mqtt": _mqtt_actuator,
    "http_relay": _http_relay,
    "serial_relay": _serial_relay,
}


def build_actuator(
    settings: ActuatorSettings, mqtt: MqttSettings | None = None, gate_id: str = CameraSettings().gate_id
) -> Actuator:
    """The actuator named by `settings.kind`; an unknown kind fails listing the valid ones. The `mqtt` kind
    publishes on the `mqtt` broker (the config's [mqtt]) as client <client_id>-door."""
    factory = ACTUATORS.get(settings.kind)
    if factory is None:
        raise FaceGateError(f"actuator.kind: unknown actuator {settings.kind!r} (valid: {', '.join(ACTUATORS)})")
    if settings.kind == "mqtt" and mqtt is None:
        raise FaceGateError("actuator.kind = 'mqtt' needs the [mqtt] broker settings passed to build_actuator")
    return factory(settings, mqtt or MqttSettings(), gate_id)
