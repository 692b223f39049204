"""gate.store.csv_cells: text a spreadsheet would take for a formula gets with a leading apostrophe, nothing else."""

from __future__ import annotations

import pytest

from gate.store.csv_cells import safe_row, spreadsheet_safe


@pytest.mark.parametrize("text", ["=1+2", "+E1", "-E1", "@SUM(A1)", "\tE1", "\rE1", '=HYPERLINK("http://x")'])
def test_a_formula_start_is_quoted(text: str) -> None:
    assert spreadsheet_safe(text) == "'" + text


@pytest.mark.parametrize("value", ["E001", "Ada Lovelace", "", " =1", "a=b", None, -0.5, 3, "'=1"])
def test_anything_else_is_left_alone(value: object) -> None:
    assert spreadsheet_safe(value) == value


def test_safe_row_quotes_each_cell() -> None:
    assert safe_row({"employee_id": "=1", "score": -1.0, "gate_id": "front"}) == {
        "employee_id": "'=1",
        "score": -1.0,
        "gate_id": "front",
    }
