"""The agency portal: officers' accounts (argon2 password hashes) and their server-side sessions.

`portal_officers` (unique username; agency and role: officer of one agency, or central) and
`portal_sessions` (keyed by the SHA-256 of the session cookie's token; absolute expiry, last
use for the idle limit, revocation on logout). New tables only: the downgrade drops them.

Revision ID: 0005_officers
Revises: 0004_complaints
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_officers"
down_revision = "0004_complaints"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "portal_officers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(64), nullable=False),
        sa.Column("display_name", sa.String(200), nullable=False),
        sa.Column("agency_code", sa.String(6), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(200), nullable=False),
        sa.Column("disabled", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_login_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_portal_officers"),
        sa.UniqueConstraint("username", name="uq_portal_officers_username"),
    )
    op.create_table(
        "portal_sessions",
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("officer_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["officer_id"], ["portal_officers.id"], name="fk_portal_sessions_officer_id_portal_officers",
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("token_hash", name="pk_portal_sessions"),
    )
    op.create_index("ix_portal_sessions_officer_id", "portal_sessions", ["officer_id"])


def downgrade() -> None:
    op.drop_table("portal_sessions")
    op.drop_table("portal_officers")
