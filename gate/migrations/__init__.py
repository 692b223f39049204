"""Alembic migrations of the FaceGate database schema (run by gate.store.Database on open)."""
