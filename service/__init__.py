"""`facegate serve`: the REST API (and, later, the admin page) over the gate's database, enrolment and model."""

from __future__ import annotations

from service.app import create_app

__all__ = ["create_app"]
