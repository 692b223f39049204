"""CSV cells a spreadsheet will not run: text starting with =, +, -, @, tab or carriage return is a formula (or
becomes one) in Excel, LibreOffice and Google Sheets, so such a cell is written with a leading apostrophe, as
OWASP's CSV-injection advice says. Numbers are left as they are."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: object) -> object:
    """`value` as a CSV cell: text a spreadsheet would take for a formula gets a leading "'"; the rest unchanged."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def safe_row(row: dict[str, object]) -> dict[str, object]:
    """A csv.DictWriter row with every cell made spreadsheet_safe."""
    return {key: spreadsheet_safe(value) for key, value in row.items()}


def csv_text(columns: Sequence[str], rows: Iterable[dict[str, object]]) -> str:
    """A header of `columns`, then one line per row, every cell spreadsheet_safe."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(safe_row(row) for row in rows)
    return out.getvalue()
