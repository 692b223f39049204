"""gate/__init__ re-exports the runtime's public API, each name from the module that defines it."""

from __future__ import annotations

import pytest

import gate


def test_every_public_name_resolves_to_its_module() -> None:
    for name in gate.__all__:
        value = getattr(gate, name)
        assert getattr(value, "__module__", "").startswith("gate."), name
    assert gate.Runtime.__module__ == "gate.runtime.parts" and gate.run_gate.__module__ == "gate.runtime.run"


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Trainer'"):
        gate.Trainer  # noqa: B018
