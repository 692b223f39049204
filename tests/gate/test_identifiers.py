"""The one rule for employee ids (gate.store.identifiers), on the ids an adversarial test slipped through before."""

from __future__ import annotations

import unicodedata

import pytest

from gate.errors import FaceGateError
from gate.store.identifiers import MAX_ID_LENGTH, employee_id

REFUSED = {
    "../../x": "'/'",
    "a\\b": "'\\\\'",
    "E\u200b001": "U+200B",  # a zero-width space: prints as E001
    "E\u202e100": "U+202E",  # right-to-left override: prints reversed
    "E\n01": "U+000A",  # splits the CLI's table
    "E\t01": "U+0009",
    "E\u00a0001": "U+00A0",  # a no-break space looks like a space
    "<svg/onload=alert(1)>": "'/'",
    "": "0 characters",
    "   ": "0 characters",
    "E" * (MAX_ID_LENGTH + 1): f"{MAX_ID_LENGTH + 1} characters",
    "..": "names a folder",
}


@pytest.mark.parametrize("raw", list(REFUSED))
def test_an_id_the_rule_refuses_is_one_line_saying_why(raw: str) -> None:
    with pytest.raises(FaceGateError) as refused:
        employee_id(raw)
    message = str(refused.value)
    assert REFUSED[raw] in message and "\n" not in message and len(message) < 300


def test_ids_are_stripped_and_composed_so_one_spelling_is_one_person() -> None:
    decomposed = unicodedata.normalize("NFD", "Émile-42")
    assert decomposed != "Émile-42" and employee_id(f"  {decomposed} ") == "Émile-42"
    assert employee_id("E 001") == "E 001" and employee_id("=1+2") == "=1+2"  # a formula is the CSV export's care
    assert employee_id("E" * MAX_ID_LENGTH) == "E" * MAX_ID_LENGTH
