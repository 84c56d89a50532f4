"""Delivery: the channels' durable inbox and outbox, opt-outs, outages; linked identities in clear.

`inbound_events` keeps each accepted LINE/Telegram event until it is handled (unique per channel
and platform event id, so redeliveries are dropped across restarts); `outbound_messages` the
messages pushed later (unique key: delivered at most once); `delivery_opt_outs` the identities
that blocked the bot; `delivery_outages` who was already told the system is down.

`identity_links.identity` (nullable) keeps a linked LINE or Telegram identity itself beside its
keyed hash, so delay notices and status changes can be pushed to it: an opaque platform user id
(`line:<userId>`, `telegram:<chat id>`), never a phone or ID number. Web-chat sessions (no push)
and links made before this revision stay NULL (found by hash as before; nothing is pushed to
them, until the citizen verifies again on LINE or Telegram).

Revision ID: 0003_delivery
Revises: 0002_due_dates
Create Date: 2026-05-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_delivery"
down_revision = "0002_due_dates"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("identity_links") as batch:
        batch.add_column(sa.Column("identity", sa.String(200), nullable=True))
    op.create_table(
        "inbound_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("event_id", sa.String(128), nullable=False),
        sa.Column("identity", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("reply_token", sa.String(256), nullable=True),
        sa.Column("extra", sa.JSON(), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("finished_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inbound_events"),
        sa.UniqueConstraint("channel", "event_id", name="uq_inbound_events_channel_event"),
    )
    op.create_index("ix_inbound_events_queue", "inbound_events", ["state", "identity", "id"])
    op.create_index("ix_inbound_events_due", "inbound_events", ["state", "next_attempt_at"])
    op.create_index("ix_inbound_events_received", "inbound_events", ["received_at"])
    op.create_table(
        "outbound_messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(400), nullable=False),
        sa.Column("identity", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_owner", sa.String(64), nullable=True),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_outbound_messages"),
        sa.UniqueConstraint("key", name="uq_outbound_messages_key"),
    )
    op.create_index("ix_outbound_messages_queue", "outbound_messages", ["state", "identity", "id"])
    op.create_index("ix_outbound_messages_due", "outbound_messages", ["state", "next_attempt_at"])
    op.create_index("ix_outbound_messages_created", "outbound_messages", ["created_at"])
    op.create_table(
        "delivery_opt_outs",
        sa.Column("identity", sa.String(200), nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("identity", name="pk_delivery_opt_outs"),
    )
    op.create_table(
        "delivery_outages",
        sa.Column("identity", sa.String(200), nullable=False),
        sa.Column("since", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("identity", name="pk_delivery_outages"),
    )


def downgrade() -> None:
    for table in ("delivery_outages", "delivery_opt_outs", "outbound_messages", "inbound_events"):
        op.drop_table(table)
    with op.batch_alter_table("identity_links") as batch:
        batch.drop_column("identity")
