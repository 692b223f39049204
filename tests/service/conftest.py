"""The `site` fixture: the API over a temporary SQLite database and the untrained test model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from service_site import Site, open_site, site_settings


@pytest.fixture
def site(tmp_path: Path, untrained_card: Path) -> Iterator[Site]:
    yield from open_site(site_settings(tmp_path, untrained_card))
