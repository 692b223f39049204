"""Employee ids as the API takes them (path, form and query parameters): gate.store.identifiers' one rule, refused with
a one-line 422 before anything is looked up, so an id is never stored, searched or routed in another spelling."""

from __future__ import annotations

from fastapi import HTTPException

from gate.errors import FaceGateError
from gate.store.identifiers import employee_id


def api_employee_id(raw: str) -> str:
    """`raw` as an employee id (stripped, NFC), or 422 saying why not."""
    try:
        return employee_id(raw)
    except FaceGateError as error:
        raise HTTPException(422, str(error)) from None


def path_employee_id(employee_id: str) -> str:
    """The {employee_id} of a route's path, checked (a FastAPI dependency)."""
    return api_employee_id(employee_id)
