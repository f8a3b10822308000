"""Jobs, their inputs and their pages.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "ocr_jobs",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("idempotency_key", sa.String(200), unique=True),
        sa.Column("options", sa.Text, nullable=False),
        sa.Column("pages_total", sa.Integer, nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("expires_at", WHEN, nullable=False),
    )
    op.create_index("ix_ocr_jobs_expires_at", "ocr_jobs", ["expires_at"])
    op.create_table(
        "ocr_job_inputs",
        sa.Column(
            "job_id",
            sa.String(32),
            sa.ForeignKey("ocr_jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("data", sa.LargeBinary, nullable=False),
    )
    op.create_table(
        "ocr_job_pages",
        sa.Column(
            "job_id",
            sa.String(32),
            sa.ForeignKey("ocr_jobs.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("number", sa.Integer, primary_key=True),
        sa.Column("input_position", sa.Integer, nullable=False),
        sa.Column("input_page", sa.Integer, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("published", sa.Boolean, nullable=False),
        sa.Column("result", sa.Text),
        sa.Column("error", sa.Text),
        sa.Column("updated_at", WHEN, nullable=False),
    )
    op.create_index("ix_ocr_job_pages_status", "ocr_job_pages", ["status"])


def downgrade() -> None:
    op.drop_table("ocr_job_pages")
    op.drop_table("ocr_job_inputs")
    op.drop_table("ocr_jobs")
