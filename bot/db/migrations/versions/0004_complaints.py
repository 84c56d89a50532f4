"""Complaints: filed by citizens, routed to an agency, answered, escalated; agencies' webhooks.

`complaints` (one per complaint, unique per reporter and idempotency key, so a double-tapped
submit files one), `complaint_photos` (ids in the photo store under the data directory: the
bytes never enter the database), `complaint_messages` (officers' replies, citizens' reasons),
`complaint_routes` (every routing decision with its reason; an escalation's `breach` is unique
per complaint, so each missed deadline escalates once), `complaint_links` (identities that
proved the verification digits), `webhook_subscriptions` and `webhook_deliveries` (the signed
webhook outbox, with bot.delivery.queue's working columns).

Complaint numbers (CMP-<Buddhist year>-NNNNNN) share `tracking_sequences` with requests.
New tables only: the downgrade drops them and touches nothing else.

Revision ID: 0004_complaints
Revises: 0003_delivery
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_complaints"
down_revision = "0003_delivery"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "complaints",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tracking_number", sa.String(20), nullable=False),
        sa.Column("idempotency_key", sa.String(128), nullable=False),
        sa.Column("reporter_hash", sa.String(64), nullable=False),
        sa.Column("reporter_identity", sa.String(200), nullable=True),
        sa.Column("reporter_channel", sa.String(16), nullable=False),
        sa.Column("service_id", sa.String(64), nullable=True),
        sa.Column("step_index", sa.Integer(), nullable=True),
        sa.Column("named_agency", sa.String(6), nullable=True),
        sa.Column("about_agency", sa.String(6), nullable=True),
        sa.Column("agency_code", sa.String(6), nullable=False),
        sa.Column("route_reason", sa.Text(), nullable=False),
        sa.Column("misconduct", sa.Boolean(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("place", sa.String(200), nullable=True),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.Column("contact_sealed", sa.Text(), nullable=True),
        sa.Column("verifier_hash", sa.String(64), nullable=True),
        sa.Column("consent_at", sa.DateTime(), nullable=True),
        sa.Column("contact_retain_until", sa.DateTime(), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("filed_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("routed_at", sa.DateTime(), nullable=False),
        sa.Column("acknowledge_due_at", sa.DateTime(), nullable=False),
        sa.Column("resolve_due_at", sa.DateTime(), nullable=False),
        sa.Column("next_due_at", sa.DateTime(), nullable=True),
        sa.Column("acknowledged_at", sa.DateTime(), nullable=True),
        sa.Column("resolved_at", sa.DateTime(), nullable=True),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("reopened_at", sa.DateTime(), nullable=True),
        sa.Column("reopen_count", sa.Integer(), nullable=False),
        sa.Column("escalation_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_complaints"),
        sa.UniqueConstraint("tracking_number", name="uq_complaints_tracking_number"),
        sa.UniqueConstraint("reporter_hash", "idempotency_key", name="uq_complaints_reporter_key"),
    )
    op.create_index("ix_complaints_agency_due", "complaints", ["agency_code", "next_due_at"])
    op.create_index("ix_complaints_agency_filed", "complaints", ["agency_code", "filed_at"])
    op.create_index("ix_complaints_due", "complaints", ["next_due_at"])
    op.create_index("ix_complaints_reporter", "complaints", ["reporter_hash", "filed_at"])
    _child(
        "complaint_photos",
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("photo_id", sa.String(64), nullable=False),
        sa.Column("media_type", sa.String(32), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
    )
    _child(
        "complaint_messages",
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("author", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("agency_code", sa.String(6), nullable=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
    )
    _child(
        "complaint_routes",
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("from_agency", sa.String(6), nullable=True),
        sa.Column("to_agency", sa.String(6), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("breach", sa.String(64), nullable=True),
        sa.UniqueConstraint("complaint_id", "breach", name="uq_complaint_routes_breach"),
    )
    op.create_table(
        "complaint_links",
        sa.Column("identity_hash", sa.String(64), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        sa.Column("linked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["complaint_id"], ["complaints.id"], name="fk_complaint_links_complaint_id_complaints", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("identity_hash", "complaint_id", name="pk_complaint_links"),
    )
    op.create_index("ix_complaint_links_complaint_id", "complaint_links", ["complaint_id"])
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("agency_code", sa.String(6), nullable=False),
        sa.Column("url", sa.String(500), nullable=False),
        sa.Column("secret_sealed", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_subscriptions"),
    )
    op.create_index("ix_webhook_subscriptions_agency_code", "webhook_subscriptions", ["agency_code"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("identity", sa.String(200), nullable=False),
        sa.Column("subscription_id", sa.Integer(), nullable=False),
        sa.Column("agency_code", sa.String(6), nullable=False),
        sa.Column("event", sa.String(32), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("queued_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["subscription_id"], ["webhook_subscriptions.id"],
            name="fk_webhook_deliveries_subscription_id_webhook_subscriptions", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_webhook_deliveries"),
        sa.UniqueConstraint("key", name="uq_webhook_deliveries_key"),
    )
    op.create_index("ix_webhook_deliveries_subscription_id", "webhook_deliveries", ["subscription_id"])
    op.create_index("ix_webhook_deliveries_queue", "webhook_deliveries", ["state", "identity", "id"])
    op.create_index("ix_webhook_deliveries_due", "webhook_deliveries", ["state", "next_attempt_at"])
    op.create_index("ix_webhook_deliveries_agency", "webhook_deliveries", ["agency_code", "state", "id"])


def _child(table: str, *columns: sa.Column | sa.UniqueConstraint) -> None:
    """A table of rows belonging to one complaint (deleted with it), indexed by complaint."""
    op.create_table(
        table,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("complaint_id", sa.Integer(), nullable=False),
        *columns,
        sa.ForeignKeyConstraint(
            ["complaint_id"], ["complaints.id"], name=f"fk_{table}_complaint_id_complaints", ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
    )
    op.create_index(f"ix_{table}_complaint_id", table, ["complaint_id"])


def downgrade() -> None:
    for table in (
        "webhook_deliveries", "webhook_subscriptions", "complaint_links", "complaint_routes",
        "complaint_messages", "complaint_photos", "complaints",
    ):
        op.drop_table(table)
