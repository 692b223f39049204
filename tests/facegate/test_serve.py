"""`facegate serve` as a user starts it: uvicorn on [service] host:port, the API refusing the anonymous and
answering a token."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from facegate_process import free_port, serving

from facegate.commands.serve import is_loopback
from gate.config import load_settings
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
