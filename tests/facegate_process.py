"""The `facegate` command as a user starts it, for tests that run it in its own process: the command line, a free
loopback port, and `facegate serve` started and waited for."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

FACEGATE = (sys.executable, "-c", "from facegate.cli import main; main()")  # the installed entry point's code


def facegate_command(*args: str | Path) -> list[str]:
    return [*FACEGATE, *(str(arg) for arg in args)]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Server:
    """A running `facegate serve`; `output` holds what it printed once it has stopped."""

    url: str
    process: subprocess.Popen
    output: str = ""


@contextmanager
def serving(config: Path, port: int, cwd: Path | None = None, timeout_s: float = 60) -> Iterator[Server]:
    """`facegate --config CONFIG serve`, answering on http://127.0.0.1:PORT (its page) before this yields; stopped
    with SIGTERM after."""
    command = facegate_command("--config", config, "serve")
    process = subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    server = Server(f"http://127.0.0.1:{port}", process)
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                urllib.request.urlopen(server.url + "/", timeout=2).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    process.kill()
                    raise AssertionError(f"facegate serve did not start: {process.communicate()[0][-2000:]}") from None
                time.sleep(0.3)
        yield server
    finally:
        if process.poll() is None:
            process.terminate()
        server.output = process.communicate(timeout=30)[0]
