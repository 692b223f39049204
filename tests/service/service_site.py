"""A FaceGate API over a temporary SQLite database and a model card, with two accounts and two tokens."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from fastapi.testclient import TestClient

from gate.config import Settings, settings_from_dict
from gate.store.database import Database
from service.accounts import add_account, add_token
from service.app import create_app

PASSWORD = "correct horse battery"


@dataclass
class Site:
    client: TestClient
    database: Database
    admin_token: str
    viewer_token: str


def site_settings(tmp_path: Path, card: Path, max_upload_mb: float = 20.0, camera_source: str = "0") -> Settings:
    """The site's settings; `camera_source`: the [camera] source of its one gate, front-door."""
    data = {
        "camera": {"source": camera_source},
        "database": {"url": f"sqlite:///{tmp_path / 'gate.db'}", "journal_path": str(tmp_path / "events.journal")},
        "gallery": {"index_path": str(tmp_path / "gallery.faiss")},
        "model": {"path": str(card)},
        "service": {"max_upload_mb": max_upload_mb},
    }
    return settings_from_dict(data, base_dir=tmp_path)


def open_site(settings: Settings) -> Iterator[Site]:
    app = create_app(settings)
    with TestClient(app) as client:
        database = app.state.parts.database
        add_account(database, "ada", PASSWORD, "admin")
        add_account(database, "vic", PASSWORD, "viewer")
        yield Site(client, database, add_token(database, "door-admin", "admin"), add_token(database, "wall", "viewer"))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def sign_in(site: Site, name: str = "ada", password: str = PASSWORD) -> str:
    """Signs the client in (the cookie is kept by the client); returns the CSRF token."""
    response = site.client.post("/api/session", json={"name": name, "password": password})
    assert response.status_code == 200, response.text
    return response.json()["csrf_token"]


def refused(response, status: int) -> str:  # noqa: ANN001  (an httpx response)
    """The one-line error of a response refused with `status`."""
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error and "\n" not in error
    return error
