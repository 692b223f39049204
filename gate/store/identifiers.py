"""One rule for employee ids, wherever one enters (the CLI, the REST API, a badge claim): printable text in
Unicode's composed form (NFC), no control, zero-width or bidirectional characters, no path separators, at most
MAX_ID_LENGTH characters. What prints as E001 is E001, and an id never splits a table or a URL."""

from __future__ import annotations

import unicodedata

from gate.errors import FaceGateError

MAX_ID_LENGTH = 64  # the database's employee_id column
SEPARATORS = frozenset("/\\")  # an id is a URL path segment of the API and may name a file
ID_RULE = f"1 to {MAX_ID_LENGTH} printable characters, no slash or backslash"


def _refusal(text: str) -> str | None:
    """Why `text` (stripped, NFC) is no employee id, or None when it is one."""
    if not text or len(text) > MAX_ID_LENGTH:
        return f"it has {len(text)} characters"
    for char in text:
        # str.isprintable is False for every control (Cc), format (Cf: zero-width, bidirectional marks),
        # surrogate, private or unassigned character and for every separator but the ASCII space
        if not char.isprintable():
            return f"it holds the invisible or control character U+{ord(char):04X}"
        if char in SEPARATORS:
            return f"it holds {char!r}"
    if text in (".", ".."):
        return "it names a folder"
    return None


def employee_id(raw: str) -> str:
    """`raw` as an employee id: stripped and composed (NFC); a one-line FaceGateError saying why it is refused."""
    text = unicodedata.normalize("NFC", raw.strip())
    reason = _refusal(text)
    if reason is not None:
        raise FaceGateError(f"employee id {ascii(raw)[:80]} refused: {reason} (allowed: {ID_RULE})")
    return text
