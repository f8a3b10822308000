"""Alembic's entry point for the jobs schema: it runs on the connection jobs/migrate.py passes."""

from alembic import context

from jobs.migrate import VERSION_TABLE
from jobs.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, version_table=VERSION_TABLE)
with context.begin_transaction():
    context.run_migrations()
