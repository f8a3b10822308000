"""The jobs database: one schema for PostgreSQL and SQLite, written once as SQLAlchemy tables.

The migrations (jobs/migrations) create exactly these tables; a test checks the two agree.
A job's inputs are kept in the database beside its state, so a restart loses neither.
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()

JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")
PAGE_STATUSES = ("queued", "running", "done", "failed", "cancelled")

jobs = Table(
    "ocr_jobs",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("status", String(16), nullable=False),
    Column("idempotency_key", String(200), unique=True),
    Column("options", Text, nullable=False),  # JSON: the detection parameters and mode
    Column("pages_total", Integer, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

inputs = Table(
    "ocr_job_inputs",
    metadata,
    Column("job_id", String(32), ForeignKey("ocr_jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("position", Integer, primary_key=True),  # 0 for the first file
    Column("data", LargeBinary, nullable=False),
)

pages = Table(
    "ocr_job_pages",
    metadata,
    Column("job_id", String(32), ForeignKey("ocr_jobs.id", ondelete="CASCADE"), primary_key=True),
    Column("number", Integer, primary_key=True),  # 1 for the job's first page
    Column("input_position", Integer, nullable=False),
    Column("input_page", Integer, nullable=False),  # 0-based page of that input
    Column("status", String(16), nullable=False, index=True),
    Column("attempts", Integer, nullable=False),
    Column("published", Boolean, nullable=False),  # on the pages queue (distributed only)
    Column("result", Text),  # JSON: the page's export, once done
    Column("error", Text),  # JSON: the error's export, once failed
    Column("updated_at", DateTime(timezone=True), nullable=False),
)
