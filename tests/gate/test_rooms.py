"""gate/'s floor plan, checked from the source: rooms along the frame's path, each importing only rooms before it,
and no import circle anywhere in the project.

The order: vision → model → store → matching → decision → door → runtime. The store sits below matching (the
gallery syncs from it) though a frame reaches it last; config, errors and devices at gate's top are shared by all.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("vision", "model", "store", "matching", "decision", "door", "runtime")
SHARED = {"__init__", "config", "errors", "devices"}
PACKAGES = ("gate", "enrollment", "training", "evaluation", "service", "facegate")


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every import of our packages, `from a import b` counted as `a.b` when that is a
    module; imports under `if TYPE_CHECKING:` are left out (they never run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    checking = {
        id(node)
        for guard in ast.walk(tree)
        if isinstance(guard, ast.If) and "TYPE_CHECKING" in ast.unparse(guard.test)
        for node in ast.walk(guard)
    }
    found = []
    for node in ast.walk(tree):
        if id(node) in checking:
            continue
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found += [(node.lineno, resolve(node.module, alias.name)) for alias in node.names]
    return [(line, name) for line, name in found if name.split(".")[0] in PACKAGES]


def resolve(module: str, name: str) -> str:
    """`from module import name`: the submodule when `name` is one, else the module itself."""
    base = ROOT.joinpath(*module.split("."))
    return f"{module}.{name}" if (base / f"{name}.py").exists() or (base / name / "__init__.py").exists() else module


def room_of(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "gate" and parts[1] in ROOMS else None


def test_gate_has_only_rooms_and_shared_modules_at_its_top() -> None:
    top = {p.stem for p in (ROOT / "gate").glob("*.py")}
    assert top <= SHARED, f"modules at gate/'s top besides the shared ones: {sorted(top - SHARED)}"
    assert all((ROOT / "gate" / room / "__init__.py").exists() for room in ROOMS)


@pytest.mark.parametrize("room", ROOMS)
def test_a_room_imports_only_rooms_before_it(room: str) -> None:
    allowed = set(ROOMS[: ROOMS.index(room) + 1])
    wrong = [
        f"{path.relative_to(ROOT)}:{line} imports {target}"
        for path in sorted((ROOT / "gate" / room).rglob("*.py"))
        for line, target in imports_of(path)
        if room_of(target) not in allowed
        and not (target.startswith("gate.") and target.split(".")[1] in SHARED)
        and target != "gate"
    ]
    assert not wrong, f"gate/{room} may import only {sorted(allowed)} and gate's shared modules:\n" + "\n".join(wrong)


def test_the_shared_modules_import_no_room() -> None:
    wrong = [
        f"gate/{name}.py:{line} imports {target}"
        for name in sorted(SHARED - {"__init__"})
        for line, target in imports_of(ROOT / "gate" / f"{name}.py")
        if room_of(target)
    ]
    assert not wrong, "\n".join(wrong)


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(p): p for package in PACKAGES for p in (ROOT / package).rglob("*.py")}
    return {name: {t for _, t in imports_of(path) if t in modules and t != name} for name, path in modules.items()}


def find_circle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle as the list of modules around it, or None (iterative depth-first search)."""
    state: dict[str, int] = {}
    for start in sorted(graph):
        if start in state:
            continue
        stack, path = [(start, iter(sorted(graph[start])))], [start]
        state[start] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                state[node] = 2
                stack.pop()
                path.pop()
            elif state.get(child) == 1:
                return path[path.index(child) :] + [child]
            elif child not in state:
                state[child] = 1
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
    return None


def test_no_import_circle_anywhere() -> None:
    circle = find_circle(import_graph())
    assert circle is None, "import circle: " + " → ".join(circle or [])


def test_the_circle_finder_sees_a_circle() -> None:
    assert find_circle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_circle({"a": {"b"}, "b": set()}) is None
