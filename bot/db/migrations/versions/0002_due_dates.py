"""Due dates: each request's SLA deadline stored with it, so the late filters run in SQL.

Adds `service_requests.due_at` (naive UTC, like every time column) and `due_basis` (the SLA
basis it was computed under), both nullable, and an index on (agency_code, due_basis, due_at).

Existing rows are left with `due_basis` NULL, meaning "not computed yet": the deadline comes
from the SLA clock with the live catalog (office hours, step durations, the calendar), which a
migration must not depend on. `sla-bot db upgrade` fills them right after migrating
(`Registry.recompute_due_dates`), and until then the registry judges such rows in Python when
it meets them, storing what it computed, so results never depend on the backfill having run.

Revision ID: 0002_due_dates
Revises: 0001_casework
Create Date: 2026-05-08
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_due_dates"
down_revision = "0001_casework"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("service_requests") as batch:
        batch.add_column(sa.Column("due_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("due_basis", sa.String(16), nullable=True))
    op.create_index(
        "ix_service_requests_agency_due", "service_requests", ["agency_code", "due_basis", "due_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_service_requests_agency_due", table_name="service_requests")
    with op.batch_alter_table("service_requests") as batch:
        batch.drop_column("due_basis")
        batch.drop_column("due_at")
