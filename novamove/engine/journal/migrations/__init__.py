"""Alembic migrations of the journal (novamove.engine.journal.migrate runs them)."""
