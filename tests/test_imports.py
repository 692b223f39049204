"""The house rule, checked from the source: each package imports only the packages below it.

gate → nothing of ours; enrollment → gate; training → gate; evaluation → training, enrollment, gate;
service (facegate serve) → enrollment, gate; facegate (the commands) → any. A wrong-way arrow fails here with
the file, line and import.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OURS = {"gate", "enrollment", "training", "evaluation", "service", "facegate"}
ALLOWED = {
    "gate": {"gate"},
    "enrollment": {"enrollment", "gate"},
    "training": {"training", "gate"},
    "evaluation": {"evaluation", "training", "enrollment", "gate"},
    "service": {"service", "enrollment", "gate"},
    "facegate": OURS,
}


def imported_packages(path: Path) -> list[tuple[int, str]]:
    """(line, top-level package) of every absolute import of one of our packages in a module."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [(node.lineno, name.split(".")[0]) for name in names if name.split(".")[0] in OURS]
    return found


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_imports_run_only_downhill(package: str) -> None:
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for path in sorted((ROOT / package).rglob("*.py"))
        for line, target in imported_packages(path)
        if target not in ALLOWED[package]
    ]
    assert not wrong, f"{package} may import only {sorted(ALLOWED[package])}:\n" + "\n".join(wrong)


def test_the_rule_sees_a_wrong_way_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("import os\nfrom training.train import train\n\ndef f():\n    import evaluation.study\n")
    assert imported_packages(module) == [(2, "training"), (5, "evaluation")]
