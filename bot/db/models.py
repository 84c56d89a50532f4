"""The tables (SQLAlchemy 2 declarative). Alembic migrations under `migrations/` create them.

Times are stored as naive UTC on every database (`UtcDateTime`) so SQLite and PostgreSQL
compare and sort them the same way; they come back as aware datetimes in Bangkok time.
Verification digits and failed-lookup subjects are only ever stored as keyed hashes (see
bot.casework.verification); API keys only as SHA-256 hashes. A linked chat identity is found by
its keyed hash; a LINE or Telegram identity is also kept in clear beside it, only so notices can
be pushed to it (IdentityLinkRow). A complaint reporter's phone number is stored only sealed
(encrypted and authenticated, bot.complaints.contact) until its retention date; webhook secrets too.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import (
    JSON,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy import DateTime as _DateTime
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from bot.settings import TIMEZONE

# Constraint names fixed by convention, so migrations can refer to them on every database.
NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class UtcDateTime(TypeDecorator):
    """An aware datetime in, stored as naive UTC, an aware Bangkok datetime out."""

    impl = _DateTime
    cache_ok = True

    def process_bind_param(self, value: Optional[dt.datetime], dialect: Any) -> Optional[dt.datetime]:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass a timezone-aware datetime")
        return value.astimezone(dt.timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: Optional[dt.datetime], dialect: Any) -> Optional[dt.datetime]:
        if value is None:
            return None
        return value.replace(tzinfo=dt.timezone.utc).astimezone(TIMEZONE)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class TrackingSequence(Base):
    """The last serial handed out per agency and Buddhist year; bumped in the creating transaction."""

    __tablename__ = "tracking_sequences"
    agency_code: Mapped[str] = mapped_column(String(6), primary_key=True)
    year: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_value: Mapped[int] = mapped_column(Integer)


class ServiceRequestRow(Base):
    __tablename__ = "service_requests"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tracking_number: Mapped[str] = mapped_column(String(20), unique=True)
    agency_code: Mapped[str] = mapped_column(String(6))
    service_id: Mapped[str] = mapped_column(String(64))
    office: Mapped[str] = mapped_column(String(200))
    # SHA-256 of the verifier token (itself an HMAC of number and digits): never the digits.
    verifier_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(32))
    current_step: Mapped[int] = mapped_column(Integer)
    submitted_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    closed_at: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)
    last_delay_notice_at: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)
    # The SLA deadline the registry stores with every change (bot.casework.timing.DueRecord), so
    # the late filters run in SQL. NULL: it cannot be late (waiting for the citizen since before
    # the deadline, or its service left the catalog). `due_basis` is the SLA basis (catalog
    # durations, office hours, calendar) it was computed under; NULL: not computed yet.
    due_at: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)
    due_basis: Mapped[Optional[str]] = mapped_column(String(16))

    steps: Mapped[list["StepRow"]] = relationship(
        order_by="StepRow.id", cascade="all, delete-orphan", lazy="selectin"
    )
    status_changes: Mapped[list["StatusChangeRow"]] = relationship(
        order_by="StatusChangeRow.id", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (
        Index("ix_service_requests_agency_status", "agency_code", "status", "submitted_at"),
        Index("ix_service_requests_agency_submitted", "agency_code", "submitted_at"),
        Index("ix_service_requests_agency_due", "agency_code", "due_basis", "due_at"),
    )


class StepRow(Base):
    """One stay in a catalog step; `note` is the officer's note to the citizen for it."""

    __tablename__ = "request_steps"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id", ondelete="CASCADE"), index=True)
    step_index: Mapped[int] = mapped_column(Integer)
    entered_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    left_at: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)
    note: Mapped[Optional[str]] = mapped_column(Text)


class StatusChangeRow(Base):
    """A status change; the waiting-for-citizen pauses of the SLA clock are read from these."""

    __tablename__ = "request_status_changes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    request_id: Mapped[int] = mapped_column(ForeignKey("service_requests.id", ondelete="CASCADE"), index=True)
    from_status: Mapped[Optional[str]] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class IdentityLinkRow(Base):
    """A chat identity (keyed hash) that proved it knows a request's verification digits."""

    __tablename__ = "identity_links"
    identity_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    request_id: Mapped[int] = mapped_column(
        ForeignKey("service_requests.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    linked_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    # The chat identity itself (`line:<userId>`, `telegram:<chat id>`), kept so the bot can push
    # this request's delay notices and status changes to it: a hash cannot be sent a message.
    # It is the platform's opaque id for this bot's chat with the citizen (no phone or ID number,
    # useless outside this bot's account), and it is what the platform gives the bot with every
    # message anyway. NULL for web-chat sessions (nothing can be pushed to them; kept hashed only)
    # and for links made before revision 0003_delivery.
    identity: Mapped[Optional[str]] = mapped_column(String(200))


class VerificationFailureRow(Base):
    """A failed verification, once for the number and once for the identity (keyed hashes)."""

    __tablename__ = "verification_failures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_hash: Mapped[str] = mapped_column(String(64))
    failed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)

    __table_args__ = (Index("ix_verification_failures_subject", "subject_hash", "failed_at"),)


class VerificationLockRow(Base):
    __tablename__ = "verification_locks"
    subject_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    locked_until: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class ApiKeyRow(Base):
    __tablename__ = "api_keys"
    key_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    agency_code: Mapped[str] = mapped_column(String(6), index=True)
    name: Mapped[str] = mapped_column(String(200))
    key_hash: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)


class AuditRow(Base):
    """Who (API key id, "cli" or "system") changed what, when, with the values before and after."""

    __tablename__ = "audit_log"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(32))
    agency_code: Mapped[Optional[str]] = mapped_column(String(6))
    subject: Mapped[str] = mapped_column(String(64))
    before: Mapped[Optional[dict]] = mapped_column(JSON)
    after: Mapped[Optional[dict]] = mapped_column(JSON)

    __table_args__ = (
        Index("ix_audit_log_subject", "subject", "id"),
        Index("ix_audit_log_agency", "agency_code", "id"),
    )


# -- delivery (bot.delivery): the durable inbox and outbox of the chat channels ----------------


class InboundEventRow(Base):
    """A platform event (LINE, Telegram) accepted by a webhook, until the dispatcher has handled it.

    (channel, event_id) is unique: a redelivered event is dropped, also after a restart. The
    citizen's words (`text`) and the reply token are cleared once the event is done or failed;
    the row stays a few days as the dedupe record. `lease_owner`/`lease_until`: the dispatcher
    (of one gateway replica) handling it now."""

    __tablename__ = "inbound_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    channel: Mapped[str] = mapped_column(String(16))
    event_id: Mapped[str] = mapped_column(String(128))
    identity: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    text: Mapped[str] = mapped_column(Text)
    reply_token: Mapped[Optional[str]] = mapped_column(String(256))
    extra: Mapped[dict] = mapped_column(JSON)
    received_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    state: Mapped[str] = mapped_column(String(10))  # pending, done, failed
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    lease_owner: Mapped[Optional[str]] = mapped_column(String(64))
    lease_until: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)
    last_error: Mapped[Optional[str]] = mapped_column(String(500))
    finished_at: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)

    __table_args__ = (
        UniqueConstraint("channel", "event_id", name="uq_inbound_events_channel_event"),
        Index("ix_inbound_events_queue", "state", "identity", "id"),
        Index("ix_inbound_events_due", "state", "next_attempt_at"),
        Index("ix_inbound_events_received", "received_at"),
    )


class OutboundMessageRow(Base):
    """Messages to push to one identity on its channel, delivered at most once per `key`."""

    __tablename__ = "outbound_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(400), unique=True)
    identity: Mapped[str] = mapped_column(String(200))
    channel: Mapped[str] = mapped_column(String(16))
    payload: Mapped[list] = mapped_column(JSON)  # [Reply.to_json(), ...]
    state: Mapped[str] = mapped_column(String(10))  # pending, sent, failed, cancelled
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    lease_owner: Mapped[Optional[str]] = mapped_column(String(64))
    lease_until: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)
    last_error: Mapped[Optional[str]] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_outbound_messages_queue", "state", "identity", "id"),
        Index("ix_outbound_messages_due", "state", "next_attempt_at"),
        Index("ix_outbound_messages_created", "created_at"),
    )


class OptOutRow(Base):
    """An identity that blocked the bot (LINE unfollow): nothing is pushed to it until it follows again."""

    __tablename__ = "delivery_opt_outs"
    identity: Mapped[str] = mapped_column(String(200), primary_key=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class OutageRow(Base):
    """An identity told "the system is down" during the current outage (once per outage)."""

    __tablename__ = "delivery_outages"
    identity: Mapped[str] = mapped_column(String(200), primary_key=True)
    since: Mapped[dt.datetime] = mapped_column(UtcDateTime)


# -- complaints (bot.complaints): filed by citizens, routed to an agency, answered, escalated ----


class ComplaintRow(Base):
    """A citizen's complaint, routed to the agency that must answer it (`agency_code`).

    The reporter's chat identity is kept as a keyed hash (found by it), and in clear only on
    channels the bot can push to (LINE, Telegram), like IdentityLinkRow. A phone number given
    with PDPA consent is kept only sealed (`contact_sealed`, bot.complaints.contact) until
    `contact_retain_until`, when it is purged; its last 4 digits only as a verifier hash.
    `next_due_at` is the deadline that matters now (acknowledge, else resolve; NULL once
    resolved or closed): the officers' queue sorts on it and escalation filters on it in SQL.
    `version` counts changes: notification and webhook keys are made from it."""

    __tablename__ = "complaints"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tracking_number: Mapped[str] = mapped_column(String(20), unique=True)
    idempotency_key: Mapped[str] = mapped_column(String(128))
    reporter_hash: Mapped[str] = mapped_column(String(64))
    reporter_identity: Mapped[Optional[str]] = mapped_column(String(200))
    reporter_channel: Mapped[str] = mapped_column(String(16))
    service_id: Mapped[Optional[str]] = mapped_column(String(64))
    step_index: Mapped[Optional[int]] = mapped_column(Integer)
    named_agency: Mapped[Optional[str]] = mapped_column(String(6))
    about_agency: Mapped[Optional[str]] = mapped_column(String(6))
    agency_code: Mapped[str] = mapped_column(String(6))
    route_reason: Mapped[str] = mapped_column(Text)
    misconduct: Mapped[bool] = mapped_column(Boolean)
    description: Mapped[str] = mapped_column(Text)
    place: Mapped[Optional[str]] = mapped_column(String(200))
    latitude: Mapped[Optional[float]] = mapped_column(Float)
    longitude: Mapped[Optional[float]] = mapped_column(Float)
    contact_sealed: Mapped[Optional[str]] = mapped_column(Text)
    verifier_hash: Mapped[Optional[str]] = mapped_column(String(64))
    consent_at: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)
    contact_retain_until: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)
    status: Mapped[str] = mapped_column(String(16))
    version: Mapped[int] = mapped_column(Integer)
    filed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    routed_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    acknowledge_due_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    resolve_due_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    next_due_at: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)
    acknowledged_at: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)
    resolved_at: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)
    closed_at: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)
    reopened_at: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)
    reopen_count: Mapped[int] = mapped_column(Integer)
    escalation_count: Mapped[int] = mapped_column(Integer)

    photos: Mapped[list["ComplaintPhotoRow"]] = relationship(
        order_by="ComplaintPhotoRow.position", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (
        UniqueConstraint("reporter_hash", "idempotency_key", name="uq_complaints_reporter_key"),
        Index("ix_complaints_agency_due", "agency_code", "next_due_at"),
        Index("ix_complaints_agency_filed", "agency_code", "filed_at"),
        Index("ix_complaints_due", "next_due_at"),
        Index("ix_complaints_reporter", "reporter_hash", "filed_at"),
    )


class ComplaintPhotoRow(Base):
    """A photo attached to a complaint: its id in the photo store (the bytes live under the data directory)."""

    __tablename__ = "complaint_photos"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    photo_id: Mapped[str] = mapped_column(String(64))
    media_type: Mapped[str] = mapped_column(String(32))
    size: Mapped[int] = mapped_column(Integer)


class ComplaintMessageRow(Base):
    """Words exchanged on a complaint: an officer's reply or resolution (shown to the citizen), the
    citizen's reason for reopening."""

    __tablename__ = "complaint_messages"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    author: Mapped[str] = mapped_column(String(16))  # officer, citizen
    kind: Mapped[str] = mapped_column(String(16))  # reply, resolution, reopen, close
    agency_code: Mapped[Optional[str]] = mapped_column(String(6))
    actor: Mapped[str] = mapped_column(String(64))
    text: Mapped[str] = mapped_column(Text)


class ComplaintRouteRow(Base):
    """Every routing decision with its reason: filing, transfers, escalations.

    `breach` names the deadline an escalation answered (`acknowledge:<due>` or `resolve:<due>`);
    unique per complaint, so a deadline is escalated once however often (or wherever) the
    escalation runs. NULL for filings and transfers."""

    __tablename__ = "complaint_routes"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    complaint_id: Mapped[int] = mapped_column(ForeignKey("complaints.id", ondelete="CASCADE"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    kind: Mapped[str] = mapped_column(String(16))  # filed, transfer, escalation
    from_agency: Mapped[Optional[str]] = mapped_column(String(6))
    to_agency: Mapped[str] = mapped_column(String(6))
    reason: Mapped[str] = mapped_column(Text)
    actor: Mapped[str] = mapped_column(String(64))
    breach: Mapped[Optional[str]] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("complaint_id", "breach", name="uq_complaint_routes_breach"),)


class ComplaintLinkRow(Base):
    """A chat identity (keyed hash) that proved the complaint's verification digits: it may see the status."""

    __tablename__ = "complaint_links"
    identity_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    complaint_id: Mapped[int] = mapped_column(
        ForeignKey("complaints.id", ondelete="CASCADE"), primary_key=True, index=True
    )
    linked_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)


class WebhookSubscriptionRow(Base):
    """An agency's system that receives its complaints' events, signed with `secret_sealed` (sealed)."""

    __tablename__ = "webhook_subscriptions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    agency_code: Mapped[str] = mapped_column(String(6), index=True)
    url: Mapped[str] = mapped_column(String(500))
    secret_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)


class WebhookDeliveryRow(Base):
    """One event to POST to one subscription, at most once per `key` (its Idempotency-Key).

    The working columns are bot.delivery.queue's: `identity` is the lane ("webhook:<subscription
    id>"), so one receiver gets its events one at a time, in order. `failed` is the dead letter,
    requeued by a resend (which restarts `queued_at`, the age the retry policy gives up on)."""

    __tablename__ = "webhook_deliveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    identity: Mapped[str] = mapped_column(String(200))
    subscription_id: Mapped[int] = mapped_column(ForeignKey("webhook_subscriptions.id", ondelete="CASCADE"), index=True)
    agency_code: Mapped[str] = mapped_column(String(6))
    event: Mapped[str] = mapped_column(String(32))
    body: Mapped[str] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(10))  # pending, sent, failed, cancelled
    attempts: Mapped[int] = mapped_column(Integer)
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    lease_owner: Mapped[Optional[str]] = mapped_column(String(64))
    lease_until: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)
    last_error: Mapped[Optional[str]] = mapped_column(String(500))
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    queued_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    sent_at: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)

    __table_args__ = (
        Index("ix_webhook_deliveries_queue", "state", "identity", "id"),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_agency", "agency_code", "state", "id"),
    )


# -- the agency portal (bot.gateway.portal): officers' accounts and their sessions -----------------


class PortalOfficerRow(Base):
    """An officer who logs in to the portal: of one agency (`officer`), or of every one (`central`).

    `password_hash` is an argon2id hash (bot.gateway.portal.accounts); a `disabled` officer cannot
    log in and their open sessions stop working at the next request."""

    __tablename__ = "portal_officers"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), unique=True)
    display_name: Mapped[str] = mapped_column(String(200))
    agency_code: Mapped[str] = mapped_column(String(6))
    role: Mapped[str] = mapped_column(String(16))  # officer, central
    password_hash: Mapped[str] = mapped_column(String(200))
    disabled: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_login_at: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)


class PortalSessionRow(Base):
    """A logged-in portal session, found by the SHA-256 of its cookie's token (never the token).

    Valid until `expires_at` (absolute) and while used within the idle limit of `last_seen_at`;
    logging out sets `revoked_at`."""

    __tablename__ = "portal_sessions"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    officer_id: Mapped[int] = mapped_column(ForeignKey("portal_officers.id", ondelete="CASCADE"), index=True)
    created_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    expires_at: Mapped[dt.datetime] = mapped_column(UtcDateTime)
    revoked_at: Mapped[Optional[dt.datetime]] = mapped_column(UtcDateTime)
