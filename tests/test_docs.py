"""The documentation as a reader meets it: the README stays short, every link in it and in docs/ leads somewhere,
every docs/ page the code names exists, no issue numbers, every config key is in the reference, and the README's
layout names every room of gate/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from gate.config import Settings

REPO = Path(__file__).resolve().parents[1]
PAGES = [REPO / "README.md", *sorted((REPO / "docs").rglob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6}\s+(.*)$", re.MULTILINE)
ISSUE = re.compile(r"\bissues?\b(?:'s)?\s*#?\d|\bthe issue\b|\bissue's\b", re.IGNORECASE)


def _slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _relative(page: Path) -> str:
    return str(page.relative_to(REPO))


def test_readme_is_read_in_ten_minutes() -> None:
    assert len((REPO / "README.md").read_text(encoding="utf-8").splitlines()) <= 250


@pytest.mark.parametrize("page", PAGES, ids=_relative)
def test_every_link_leads_to_a_file_and_heading_that_exist(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    for target in LINK.findall(text):
        if re.match(r"^[a-z]+:", target):
            continue  # http(s), mailto
        path, _, anchor = target.partition("#")
        found = (page.parent / path).resolve() if path else page
        assert found.exists(), f"{_relative(page)}: {target} does not exist"
        if anchor and found.suffix == ".md":
            anchors = {_slug(h) for h in HEADING.findall(found.read_text(encoding="utf-8"))}
            assert anchor in anchors, f"{_relative(page)}: {target}: no such heading in {found.name}"


def test_every_docs_page_the_code_names_exists() -> None:
    sources = [p for ext in ("py", "toml", "sh", "js", "html") for p in REPO.rglob(f"*.{ext}")]
    named = {
        (source, match)
        for source in sources
        if ".venv" not in source.parts and "site-packages" not in source.parts
        for match in re.findall(r"docs/[\w./-]+\.md", source.read_text(encoding="utf-8", errors="replace"))
    }
    assert named, "no source names a docs page: the pattern is wrong"
    missing = sorted(f"{source.relative_to(REPO)}: {page}" for source, page in named if not (REPO / page).exists())
    assert missing == []


@pytest.mark.parametrize("page", PAGES, ids=_relative)
def test_no_page_refers_to_issue_numbers(page: Path) -> None:
    lines = [line for line in page.read_text(encoding="utf-8").splitlines() if ISSUE.search(line)]
    assert lines == []


def test_configuration_reference_lists_every_key() -> None:
    reference = (REPO / "docs" / "guide" / "configuration.md").read_text(encoding="utf-8")
    sections = dict(re.findall(r"^## \[(\w+)\]\n(.*?)(?=^## |\Z)", reference, re.MULTILINE | re.DOTALL))
    for name, field in Settings.model_fields.items():
        if name in ("cameras", "base_dir"):
            continue
        assert name in sections, f"[{name}] has no section in configuration.md"
        keys = set(re.findall(r"^\| `(\w+)` \|", sections[name], re.MULTILINE))
        assert keys == set(field.annotation.model_fields), f"[{name}]: documented {sorted(keys)}"
    assert "## [[cameras]]" in reference


def test_readme_layout_names_every_room_of_gate() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    layout = readme[readme.index("## Layout") :]
    rooms = [p.name for p in (REPO / "gate").iterdir() if (p / "__init__.py").exists()]
    assert len(rooms) >= 7
    for room in rooms:
        assert f"  {room}/ " in layout, f"README's Layout does not describe gate/{room}/"
