"""`facegate serve` as a user starts it: uvicorn on [service] host:port (or --host/--port), the API refusing the
anonymous and answering a token; a port already taken refused in one line."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from facegate_process import facegate_command, free_port, serving
from typer.testing import CliRunner

from facegate.cli import app
from facegate.commands.serve import is_loopback, refuse_busy_port
from gate.config import load_settings
from gate.errors import FaceGateError
from gate.runtime.parts import open_database
from service.accounts import add_token


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("::", False)]
    + [("192.168.1.20", False), ("gate.example.org", False)],
)
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def _get(url: str, token: str | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"} if token else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.slow
def test_serve_answers_a_token_and_refuses_anonymous(tmp_path: Path, untrained_card: Path) -> None:
    port = free_port()
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/gate.db"\n[model]\npath = "{untrained_card}"\n'
        f'[service]\nhost = "127.0.0.1"\nport = {port}\n'
    )
    token = add_token(open_database(load_settings(config)), "probe", "viewer")
    with serving(config, port, cwd=tmp_path) as server:
        status, body = _get(f"{server.url}/api/model", token)
        assert (status, body["model_id"]) == (200, "untrained-test")
        status, body = _get(f"{server.url}/api/people")
        assert status == 401 and "sign in" in body["error"]
    assert "Uvicorn running on http://127.0.0.1" in server.output and "reachable from the network" not in server.output


def _config(tmp_path: Path, untrained_card: Path, port: int) -> Path:
    config = tmp_path / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path}/gate.db"\n[model]\npath = "{untrained_card}"\n'
        f'[service]\nhost = "127.0.0.1"\nport = {port}\n'
    )
    return config


@contextmanager
def _held_port() -> Iterator[int]:
    """A loopback port another program listens on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield holder.getsockname()[1]


def test_refuse_busy_port_says_in_one_line_a_port_is_taken() -> None:
    with _held_port() as port:
        with pytest.raises(FaceGateError) as taken:
            refuse_busy_port("127.0.0.1", port)
        assert str(taken.value) == (f"127.0.0.1:{port} is already in use; pick another with --port or [service] port")
    refuse_busy_port("127.0.0.1", port)  # let go: free again
    with pytest.raises(FaceGateError, match="cannot listen on no-such-host.invalid: .*; check --host or"):
        refuse_busy_port("no-such-host.invalid", port)


def test_serve_on_a_busy_port_refuses_before_starting(tmp_path: Path, untrained_card: Path) -> None:
    with _held_port() as port:
        for args in ([], ["--port", str(port)]):  # taken as configured, or as --port overrides a free one
            config = _config(tmp_path, untrained_card, port if not args else free_port())
            outcome = CliRunner().invoke(app, ["--config", str(config), "serve", *args])
            assert isinstance(outcome.exception, FaceGateError), outcome.output
            assert str(outcome.exception).startswith(f"127.0.0.1:{port} is already in use")
    outcome = CliRunner().invoke(app, ["--config", str(config), "serve", "--host", ""])
    assert isinstance(outcome.exception, FaceGateError) and str(outcome.exception).startswith("serve: --host: ")


@pytest.mark.slow  # starts the real `facegate serve` in a subprocess
def test_serve_port_taken_is_one_line_exit_2_and_port_overrides_the_config(tmp_path: Path, untrained_card: Path):
    with _held_port() as busy:
        config = _config(tmp_path, untrained_card, busy)
        done = subprocess.run(
            facegate_command("--config", config, "serve"), capture_output=True, text=True, timeout=60, cwd=tmp_path
        )
        assert done.returncode == 2 and done.stdout == "", done.stdout
        assert done.stderr == f"error: 127.0.0.1:{busy} is already in use; pick another with --port or [service] port\n"
        port = free_port()
        command = facegate_command("--config", config, "serve", "--port", str(port))
        process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    status, _ = _get(f"http://127.0.0.1:{port}/api/model")
                    break
                except OSError:
                    assert process.poll() is None and time.monotonic() < deadline, process.communicate()[0][-2000:]
                    time.sleep(0.3)
            assert status == 401  # the API, on --port rather than the configured (busy) port
        finally:
            process.terminate()
            output = process.communicate(timeout=30)[0]
    assert f"Uvicorn running on http://127.0.0.1:{port}" in output
