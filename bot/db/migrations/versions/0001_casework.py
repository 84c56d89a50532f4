"""Casework: service requests, step and status history, verification, API keys, audit.

Revision ID: 0001_casework
Revises:
Create Date: 2026-05-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_casework"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "tracking_sequences",
        sa.Column("agency_code", sa.String(6), nullable=False),
        sa.Column("year", sa.Integer(), nullable=False),
        sa.Column("last_value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("agency_code", "year", name="pk_tracking_sequences"),
    )
    op.create_table(
        "service_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tracking_number", sa.String(20), nullable=False),
        sa.Column("agency_code", sa.String(6), nullable=False),
        sa.Column("service_id", sa.String(64), nullable=False),
        sa.Column("office", sa.String(200), nullable=False),
        sa.Column("verifier_hash", sa.String(64), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        sa.Column("current_step", sa.Integer(), nullable=False),
        sa.Column("submitted_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.Column("closed_at", sa.DateTime(), nullable=True),
        sa.Column("last_delay_notice_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_service_requests"),
        sa.UniqueConstraint("tracking_number", name="uq_service_requests_tracking_number"),
    )
    op.create_index(
        "ix_service_requests_agency_status", "service_requests", ["agency_code", "status", "submitted_at"]
    )
    op.create_index("ix_service_requests_agency_submitted", "service_requests", ["agency_code", "submitted_at"])
    op.create_table(
        "request_steps",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("step_index", sa.Integer(), nullable=False),
        sa.Column("entered_at", sa.DateTime(), nullable=False),
        sa.Column("left_at", sa.DateTime(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["request_id"], ["service_requests.id"],
            name="fk_request_steps_request_id_service_requests", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_request_steps"),
    )
    op.create_index("ix_request_steps_request_id", "request_steps", ["request_id"])
    op.create_table(
        "request_status_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("from_status", sa.String(32), nullable=True),
        sa.Column("to_status", sa.String(32), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"], ["service_requests.id"],
            name="fk_request_status_changes_request_id_service_requests", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_request_status_changes"),
    )
    op.create_index("ix_request_status_changes_request_id", "request_status_changes", ["request_id"])
    op.create_table(
        "identity_links",
        sa.Column("identity_hash", sa.String(64), nullable=False),
        sa.Column("request_id", sa.Integer(), nullable=False),
        sa.Column("linked_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["request_id"], ["service_requests.id"],
            name="fk_identity_links_request_id_service_requests", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("identity_hash", "request_id", name="pk_identity_links"),
    )
    op.create_index("ix_identity_links_request_id", "identity_links", ["request_id"])
    op.create_table(
        "verification_failures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("subject_hash", sa.String(64), nullable=False),
        sa.Column("failed_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_verification_failures"),
    )
    op.create_index("ix_verification_failures_subject", "verification_failures", ["subject_hash", "failed_at"])
    op.create_table(
        "verification_locks",
        sa.Column("subject_hash", sa.String(64), nullable=False),
        sa.Column("locked_until", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("subject_hash", name="pk_verification_locks"),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), nullable=False),
        sa.Column("agency_code", sa.String(6), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
    )
    op.create_index("ix_api_keys_agency_code", "api_keys", ["agency_code"])
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("agency_code", sa.String(6), nullable=True),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_audit_log"),
    )
    op.create_index("ix_audit_log_subject", "audit_log", ["subject", "id"])
    op.create_index("ix_audit_log_agency", "audit_log", ["agency_code", "id"])


def downgrade() -> None:
    for table in (
        "audit_log", "api_keys", "verification_locks", "verification_failures", "identity_links",
        "request_status_changes", "request_steps", "service_requests", "tracking_sequences",
    ):
        op.drop_table(table)
