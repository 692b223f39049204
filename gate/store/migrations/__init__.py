"""Alembic migrations of the FaceGate database schema (run by gate.store.database.Database on open)."""
