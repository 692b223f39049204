"""The house's size rules, checked from the source of every package module (complexity is ruff's C901).

No function over 60 lines; no public function over 7 parameters (self/cls not counted). A `facegate` command's
signature is its list of command-line options, so the commands under facegate/commands/ count lines only.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("gate", "enrollment", "training", "evaluation", "service", "facegate")
MAX_LINES, MAX_PARAMS = 60, 7


def parameter_count(function: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    args = function.args
    names = [*args.posonlyargs, *args.args, *args.kwonlyargs]
    count = len(names) + (args.vararg is not None) + (args.kwarg is not None)
    return count - (1 if names and names[0].arg in ("self", "cls") else 0)


def oversized(path: Path, root: Path = ROOT) -> list[str]:
    """'file:line name: why' for each function of a module that breaks a size rule."""
    found = []
    command = path.parent.name == "commands"
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        where = f"{path.relative_to(root)}:{node.lineno} {node.name}"
        lines = node.end_lineno - node.lineno + 1
        if lines > MAX_LINES:
            found.append(f"{where}: {lines} lines")
        if not node.name.startswith("_") and not command and parameter_count(node) > MAX_PARAMS:
            found.append(f"{where}: {parameter_count(node)} parameters")
    return found


def test_no_function_too_long_or_taking_too_many_parameters() -> None:
    modules = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py")) if "migrations" not in p.parts]
    problems = [problem for path in modules for problem in oversized(path)]
    assert not problems, "\n".join(problems)


def test_the_rules_catch_a_long_function_and_a_long_signature(tmp_path: Path) -> None:
    module = tmp_path / "probe.py"
    body = "\n".join(f"    x{i} = {i}" for i in range(61))
    wide = "(a, b, c, d, e, f, g, h):\n    pass\n"
    method = "class C:\n    def m(self, a, b, c, d, e, f, g):\n        pass\n"  # 7 besides self: allowed
    module.write_text(f"def long():\n{body}\n\ndef wide{wide}\ndef _wide{wide}\n{method}")
    found = [problem.split(" ", 1)[1] for problem in oversized(module, tmp_path)]
    assert found == ["long: 62 lines", "wide: 8 parameters"]
