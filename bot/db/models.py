"""The tables (SQLAlchemy 2 declarative). Alembic migrations under `migrations/` create them.

Times are stored as naive UTC on every database (`UtcDateTime`) so SQLite and PostgreSQL
compare and sort them the same way; they come back as aware datetimes in Bangkok time.
Verification digits, chat identities and failed-lookup subjects are only ever stored as
keyed hashes (see bot.casework.verification); API keys only as SHA-256 hashes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Optional

from sqlalchemy import JSON, ForeignKey, Index, Integer, MetaData, String, Text, TypeDecorator
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

    steps: Mapped[list["StepRow"]] = relationship(
        order_by="StepRow.id", cascade="all, delete-orphan", lazy="selectin"
    )
    status_changes: Mapped[list["StatusChangeRow"]] = relationship(
        order_by="StatusChangeRow.id", cascade="all, delete-orphan", lazy="selectin"
    )

    __table_args__ = (
        Index("ix_service_requests_agency_status", "agency_code", "status", "submitted_at"),
        Index("ix_service_requests_agency_submitted", "agency_code", "submitted_at"),
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
