"""Schema-driven fuzzing of a real `facegate serve`: schemathesis generates requests from the server's own OpenAPI
schema (valid ones and ones that break it) for every operation, signed out, with an admin's API token and with
an admin's signed-in session (cookie and CSRF header). Every answer is 2xx or 4xx, every 4xx is
{"error": "<one line>"}, and a refused request leaves every table of the database as it was."""

from __future__ import annotations

import json
import sqlite3
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis import Case, GenerationMode
from served import served_site
from service_site import PASSWORD

EXAMPLES = 5  # per operation, generation mode and caller: about 250 requests in all
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,  # nothing written into the checkout; derandomize makes every run the same requests
    derandomize=True,
    phases=(Phase.explicit, Phase.generate, Phase.shrink),
    suppress_health_check=list(HealthCheck),
)


def _row_counts(database: Path) -> dict[str, int]:
    """Rows in every table of the site's SQLite database, read beside the server."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return {table: connection.execute(f'SELECT COUNT(*) FROM "{table}"').fetchone()[0] for table in tables}


def _error_problem(response: requests.Response | schemathesis.Response) -> str | None:
    """What is wrong with a refusal's body, or None when it is {"error": "<one line>"}."""
    try:
        message = json.loads(response.content).get("error")
    except (ValueError, AttributeError):
        return f"not a JSON object: {response.content[:120]!r}"
    if not isinstance(message, str) or not message or "\n" in message:
        return f"no one-line error: {response.content[:120]!r}"
    return None


def _callers(url: str, token: str) -> dict[str, Callable[[], dict]]:
    """How each kind of caller adds itself to a request: headers and cookies, made fresh for each operation."""

    def session() -> dict:
        signed = requests.post(f"{url}/api/session", json={"name": "admin", "password": PASSWORD}, timeout=10)
        assert signed.status_code == 200, signed.text
        return {"headers": {"X-CSRF-Token": signed.json()["csrf_token"]}, "cookies": dict(signed.cookies)}

    return {
        "anonymous": dict,
        "admin": lambda: {"headers": {"Authorization": f"Bearer {token}"}},
        "session": session,
    }


def test_fuzzing_every_operation_finds_no_5xx_and_no_refused_write(tmp_path: Path, untrained_card: Path) -> None:
    with served_site(tmp_path, untrained_card, log_level="WARNING") as (server, token):
        schema = schemathesis.openapi.from_url(f"{server.url}/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        problems: list[str] = []
        statuses: Counter[int] = Counter()
        started = time.perf_counter()
        for credentials in _callers(server.url, token).values():
            for operation in operations:
                for mode in _modes(operation):
                    _fuzz(operation, mode, server.url, credentials(), tmp_path / "gate.db", statuses, problems)
        elapsed = time.perf_counter() - started
    print(f"{sum(statuses.values())} requests over {len(operations)} operations in {elapsed:.1f} s: {dict(statuses)}")
    assert not problems, "\n".join(problems[:20])
    assert "Traceback" not in server.output, server.output[-3000:]
    assert len(operations) >= 12 and sum(statuses.values()) >= 200


def _fuzz(
    operation: schemathesis.APIOperation,
    mode: GenerationMode,
    url: str,
    credentials: dict,
    database: Path,
    statuses: Counter[int],
    problems: list[str],
) -> None:
    """Sends EXAMPLES generated requests to one operation; each problem found is added to `problems`."""

    @FUZZ_SETTINGS
    @given(case=operation.as_strategy(generation_mode=mode))
    def one(case: Case) -> None:
        before = _row_counts(database)
        response = case.call(base_url=url, timeout=15, **credentials)
        statuses[response.status_code] += 1
        where = f"{case.method} {case.formatted_path} ({mode.value}) -> {response.status_code}"
        if response.status_code >= 500:
            problems.append(f"{where}: {response.content[:200]!r}")
        elif response.status_code >= 400:
            if (problem := _error_problem(response)) is not None:
                problems.append(f"{where}: {problem}")
            if (after := _row_counts(database)) != before:
                problems.append(f"{where}: refused, yet the rows changed from {before} to {after}")

    one()


def _modes(operation: schemathesis.APIOperation) -> tuple[GenerationMode, ...]:
    """Requests that fit the schema, and ones that break it where a query or body can (a path's string cannot)."""
    if len(operation.query) or len(operation.body):
        return (GenerationMode.POSITIVE, GenerationMode.NEGATIVE)
    return (GenerationMode.POSITIVE,)


@pytest.fixture(autouse=True)
def _no_proxy_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """requests would send loopback calls to an HTTP(S)_PROXY of the environment."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
