"""Bring a jobs database to the newest schema with Alembic (the migrations in jobs/migrations).

Run at start-up by whatever opens the store (the pipeline, a page worker): upgrading an
up-to-date database is a no-op, so every process may do it.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, text

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
VERSION_TABLE = "ocr_jobs_schema_version"  # Alembic's record of the schema's revision


# Any fixed number: PostgreSQL's advisory lock that lets one process at a time migrate.
MIGRATION_LOCK = 7_260_001


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply the migrations up to ``revision``; processes starting together on PostgreSQL take
    turns (an advisory lock), so only the first one creates the tables."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
        config.attributes["connection"] = connection
        command.upgrade(config, revision)
