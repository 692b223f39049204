"""Tests of the actuators: a real subprocess, a real local HTTP server; failures reported, never raised."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from gate.config import ActuatorSettings
from gate.door.actuators import HttpActuator, LogActuator, ShellActuator, build_actuator
from gate.door.requests import DoorOutcome, DoorRequest
from gate.errors import FaceGateError

REQUEST = DoorRequest(gate_id="front", person_id="e7", name="Ada Lovelace", score=0.8123)


def test_build_actuator_default_is_log() -> None:
    assert isinstance(build_actuator(ActuatorSettings()), LogActuator)


def test_build_actuator_unknown_kind_lists_valid_names() -> None:
    with pytest.raises(FaceGateError, match="log, shell, http, mqtt, http_relay, serial_relay"):
        build_actuator(ActuatorSettings.model_construct(kind="relay"))


def test_log_actuator_open_logs_person(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("INFO", logger="gate.door.actuators"):  # evaluate-gate quietens this logger in-process
        assert LogActuator().open(REQUEST) is DoorOutcome.OPENED
    assert "Ada Lovelace" in caplog.text


def test_shell_actuator_fills_placeholders_and_runs(tmp_path) -> None:
    out = tmp_path / "opened.txt"
    script = "import sys; open(sys.argv[1], 'w').write(' '.join(sys.argv[2:]))"
    settings = ActuatorSettings(
        kind="shell",
        command=[sys.executable, "-c", script, str(out), "{gate_id}", "{person_id}", "{name}", "{score}"],
    )
    assert build_actuator(settings).open(REQUEST) is DoorOutcome.OPENED
    assert out.read_text() == "front e7 Ada Lovelace 0.8123"


def test_shell_actuator_nonzero_exit_reports_failed(caplog: pytest.LogCaptureFixture) -> None:
    settings = ActuatorSettings(kind="shell", command=[sys.executable, "-c", "import sys; sys.exit(3)"])
    assert ShellActuator(settings).open(REQUEST) is DoorOutcome.FAILED
    assert "exited with 3" in caplog.text


def test_shell_actuator_missing_program_reports_failed() -> None:
    settings = ActuatorSettings(kind="shell", command=["/nonexistent/open-door", "{person_id}"])
    assert ShellActuator(settings).open(REQUEST) is DoorOutcome.FAILED


def test_shell_actuator_slow_command_reports_timed_out(caplog: pytest.LogCaptureFixture) -> None:
    settings = ActuatorSettings(
        kind="shell", command=[sys.executable, "-c", "import time; time.sleep(5)"], timeout_s=0.3
    )
    assert ShellActuator(settings).open(REQUEST) is DoorOutcome.TIMED_OUT
    assert "did not finish" in caplog.text


class _Recorder(BaseHTTPRequestHandler):
    bodies: list[dict] = []
    status = 200
    delay_s = 0.0

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        length = int(self.headers["Content-Length"])
        type(self).bodies.append(json.loads(self.rfile.read(length)))
        time.sleep(type(self).delay_s)
        self.send_response(type(self).status)
        if type(self).status == 302:
            self.send_header("Location", "/elsewhere")
        self.end_headers()

    def do_GET(self) -> None:  # noqa: N802 (a page that answers 200 to a GET: where a followed redirect would land)
        type(self).bodies.append({"GET": self.path})
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[HTTPServer]:
    _Recorder.bodies, _Recorder.status, _Recorder.delay_s = [], 200, 0.0
    httpd = HTTPServer(("127.0.0.1", 0), _Recorder)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _url(httpd: HTTPServer) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}/door"


def test_http_actuator_posts_json_body(server: HTTPServer) -> None:
    assert build_actuator(ActuatorSettings(kind="http", url=_url(server))).open(REQUEST) is DoorOutcome.OPENED
    assert _Recorder.bodies == [{"gate_id": "front", "person_id": "e7", "name": "Ada Lovelace", "score": 0.8123}]


def test_http_actuator_server_error_reports_failed(server: HTTPServer) -> None:
    _Recorder.status = 500
    assert HttpActuator(ActuatorSettings(kind="http", url=_url(server))).open(REQUEST) is DoorOutcome.FAILED


def test_http_actuator_follows_no_redirect(server: HTTPServer, caplog: pytest.LogCaptureFixture) -> None:
    _Recorder.status = 302
    assert HttpActuator(ActuatorSettings(kind="http", url=_url(server))).open(REQUEST) is DoorOutcome.FAILED
    assert len(_Recorder.bodies) == 1  # the POST only: no GET to /elsewhere
    assert "answered 302" in caplog.text


def test_http_actuator_ignores_a_proxy_from_the_environment(
    server: HTTPServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.setenv(name, "http://127.0.0.1:9")  # nothing listens there: a door using it would fail
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    assert HttpActuator(ActuatorSettings(kind="http", url=_url(server))).open(REQUEST) is DoorOutcome.OPENED
    assert len(_Recorder.bodies) == 1


def test_http_actuator_slow_answer_reports_timed_out(server: HTTPServer) -> None:
    _Recorder.delay_s = 1.0
    assert (
        HttpActuator(ActuatorSettings(kind="http", url=_url(server), timeout_s=0.3)).open(REQUEST)
        is DoorOutcome.TIMED_OUT
    )


def test_http_actuator_nobody_listening_reports_failed(server: HTTPServer) -> None:
    url = _url(server)
    server.shutdown()
    server.server_close()
    assert HttpActuator(ActuatorSettings(kind="http", url=url, timeout_s=1.0)).open(REQUEST) is DoorOutcome.FAILED
