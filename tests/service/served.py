"""A real `facegate serve` over a temporary site (SQLite, the untrained test model) with an admin and a viewer
account, for the tests that attack it or fuzz it as a client would: over TCP, in its own process."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from facegate_process import Server, free_port, serving
from service_site import PASSWORD

from gate.config import load_settings
from gate.runtime.parts import open_database
from service.accounts import add_account, add_token


@contextmanager
def served_site(
    folder: Path, card: Path, trusted_proxies: tuple[str, ...] = (), log_level: str = "INFO"
) -> Iterator[tuple[Server, str]]:
    """`facegate serve` on a free loopback port with accounts admin and vic (PASSWORD); yields the server and an
    admin API token. Keep `log_level` above INFO for many requests: nobody reads the output until it stops."""
    port = free_port()
    config = folder / "config.toml"
    proxies = ", ".join(f'"{proxy}"' for proxy in trusted_proxies)
    config.write_text(
        f'[database]\nurl = "sqlite:///{folder}/gate.db"\njournal_path = "{folder}/events.journal"\n'
        f'[gallery]\nindex_path = "{folder}/gallery.faiss"\n[model]\npath = "{card}"\n'
        f'[service]\nhost = "127.0.0.1"\nport = {port}\ntrusted_proxies = [{proxies}]\n'
        f'[logging]\nlevel = "{log_level}"\n'
    )
    database = open_database(load_settings(config))
    add_account(database, "admin", PASSWORD, "admin")
    add_account(database, "vic", PASSWORD, "viewer")
    token = add_token(database, "fuzz-admin", "admin")
    database.close()
    with serving(config, port, cwd=folder) as server:
        yield server, token


def rss_kb(pid: int, field: str = "VmRSS") -> int:
    """A process's resident memory (or its peak, field="VmHWM") in kB, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/{pid}/status")
