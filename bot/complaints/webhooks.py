"""Signed webhooks to agencies' own systems: a complaint is not delivered until the agency has it.

An agency subscribes a URL (`subscribe`: HTTPS, or plain HTTP to this machine for testing) and
gets a secret once; it is stored sealed (bot.complaints.contact.Sealer). Every routing of a
complaint to the agency (filing, transfer, escalation) and every reopening queues an event for
each of its live subscriptions, in the transaction of the change (`enqueue_event`), in the
`webhook_deliveries` table: the durable queue of bot.delivery.queue, one lane per subscription,
so a receiver gets its events one at a time, in order.

`WebhookSender` POSTs each event's JSON body with

    Idempotency-Key: <the event's key, the same on every attempt>
    X-SLA-Event: complaint.received
    X-SLA-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>

(the receiver recomputes the HMAC over the raw body, compares in constant time and refuses old
timestamps: `verify_signature`), retries anything but a 2xx (and timeouts, refused connections)
with exponential backoff and jitter (RetryPolicy; a `Retry-After` is honoured) and, after
`max_attempts` or `max_age`, leaves the row `failed`: the dead letter, listed for the portal by
`deliveries(state="failed")` and requeued by `resend(key)`. A receiver may see an event more
than once (an answer lost in a timeout): it must keep the Idempotency-Key, which never changes.

Bodies carry no contact details: the agency reads those through the portal or its API, audited.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import time
from dataclasses import dataclass
from typing import Any, Mapping, Optional
from urllib.parse import urlsplit

import httpx
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from bot.casework import audit
from bot.casework.errors import InvalidInput, NotFound, UnknownAgency
from bot.complaints.desk import Desk
from bot.db import transaction
from bot.db.dialect import insert_on_conflict
from bot.db.models import WebhookDeliveryRow, WebhookSubscriptionRow
from bot.delivery.queue import PENDING, Clock, LeasedTable, Pump, RetryPolicy, utc_now
from bot.tracking import COMPLAINT_CODE

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-SLA-Signature"
EVENT_HEADER = "X-SLA-Event"
IDEMPOTENCY_HEADER = "Idempotency-Key"
SIGNATURE_TOLERANCE = dt.timedelta(minutes=5)
MAX_URL = 500
WEBHOOK_POLICY = RetryPolicy(
    first_delay=5.0, max_delay=1800.0, max_attempts=12, max_age=dt.timedelta(days=2), max_errors=12,
    max_retry_after=3600.0,
)
_LOCAL_HOSTS = {"localhost"}


@dataclass(frozen=True)
class Subscription:
    id: int
    agency_code: str
    url: str
    created_at: dt.datetime
    revoked_at: Optional[dt.datetime]


@dataclass(frozen=True)
class Delivery:
    """One event to one subscription, as the portal lists it."""

    key: str
    subscription_id: int
    agency_code: str
    event: str
    state: str
    attempts: int
    created_at: dt.datetime
    next_attempt_at: dt.datetime
    sent_at: Optional[dt.datetime]
    last_error: Optional[str]


# -- signing ------------------------------------------------------------------------------------


def signature(secret: str, timestamp: int, body: str) -> str:
    """The X-SLA-Signature value for `body` sent at `timestamp` (unix seconds)."""
    digest = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={digest}"


def verify_signature(
    secret: str, header: str, body: str, now: Optional[float] = None, tolerance: dt.timedelta = SIGNATURE_TOLERANCE
) -> bool:
    """What a receiver checks: a v1 signature of `body` with `secret`, made within `tolerance` of `now`."""
    parts: dict[str, list[str]] = {}
    for item in (header or "").split(","):
        name, _, value = item.strip().partition("=")
        parts.setdefault(name, []).append(value)
    try:
        timestamp = int(parts["t"][0])
    except (KeyError, ValueError):
        return False
    if abs((time.time() if now is None else now) - timestamp) > tolerance.total_seconds():
        return False
    expected = signature(secret, timestamp, body).split("v1=", 1)[1]
    return any(hmac.compare_digest(expected, given) for given in parts.get("v1", []))


# -- subscriptions --------------------------------------------------------------------------------


def subscribe(desk: Desk, agency_code: str, url: str, *, actor: str) -> tuple[Subscription, str]:
    """Subscribe `url` to the agency's complaint events; the subscription and its secret (shown once)."""
    audit.check_actor(actor)
    code = (agency_code or "").strip().upper()
    if code == COMPLAINT_CODE or desk.catalog().agency(code) is None:
        raise UnknownAgency(f"unknown agency code {agency_code!r}", field="agency_code")
    url = check_url(url)
    secret = "whsec_" + secrets.token_urlsafe(32)
    now = desk.now()
    with transaction(desk.writer) as session:
        row = WebhookSubscriptionRow(
            agency_code=code, url=url, secret_sealed=desk.webhook_secrets.seal(secret), created_at=now
        )
        session.add(row)
        session.flush()
        audit.record(
            session, at=now, actor=actor, action="webhook_subscribe", subject=f"webhook:{row.id}", agency_code=code,
            after={"url": url},
        )
        return _subscription(row), secret


def revoke(desk: Desk, subscription_id: int, *, actor: str, agency_code: Optional[str] = None) -> Subscription:
    """Stop sending to a subscription; its queued events are cancelled. Another agency's: NotFound."""
    audit.check_actor(actor)
    now = desk.now()
    with transaction(desk.writer) as session:
        row = session.get(WebhookSubscriptionRow, subscription_id, with_for_update=True)
        if row is None or (agency_code is not None and row.agency_code != agency_code.upper()):
            raise NotFound(f"no webhook subscription {subscription_id}", field="subscription_id")
        if row.revoked_at is None:
            row.revoked_at = now
            table = WebhookDeliveryRow.__table__
            session.execute(
                update(table)
                .where(table.c.subscription_id == row.id, table.c.state == PENDING)
                .values(state="cancelled", lease_owner=None, lease_until=None, last_error="subscription revoked")
            )
            audit.record(
                session, at=now, actor=actor, action="webhook_revoke", subject=f"webhook:{row.id}",
                agency_code=row.agency_code, after={"revoked_at": now},
            )
        return _subscription(row)


def subscriptions(desk: Desk, agency_code: Optional[str] = None) -> list[Subscription]:
    query = select(WebhookSubscriptionRow).order_by(WebhookSubscriptionRow.id)
    if agency_code is not None:
        query = query.where(WebhookSubscriptionRow.agency_code == agency_code.upper())
    with transaction(desk.engine) as session:
        return [_subscription(row) for row in session.scalars(query)]


def check_url(url: str) -> str:
    """An absolute https URL (or http to this machine, for local receivers)."""
    if not isinstance(url, str) or not url.strip() or len(url.strip()) > MAX_URL:
        raise InvalidInput(f"the webhook URL must be 1 to {MAX_URL} characters", field="url")
    url = url.strip()
    parts = urlsplit(url)
    if not parts.hostname or parts.scheme not in ("https", "http") or parts.username or parts.password:
        raise InvalidInput("the webhook URL must be an absolute https:// URL without credentials", field="url")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise InvalidInput("the webhook URL must use https (http only to this machine, for testing)", field="url")
    return url


def _loopback(host: str) -> bool:
    if host in _LOCAL_HOSTS:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- the outbox -----------------------------------------------------------------------------------


def enqueue_event(
    session: Session, agency_code: str, event: str, key: str, data: Mapping[str, Any], now: dt.datetime
) -> int:
    """Queue `event` for each live subscription of the agency, in the caller's transaction; how many.

    `key` names the event (e.g. "complaint.received:CMP-2569-000001:3"); each subscription's copy
    is keyed `<key>:s<subscription id>`, its Idempotency-Key on every attempt."""
    subscribed = session.scalars(
        select(WebhookSubscriptionRow).where(
            WebhookSubscriptionRow.agency_code == agency_code, WebhookSubscriptionRow.revoked_at.is_(None)
        )
    ).all()
    table = WebhookDeliveryRow.__table__
    queued = 0
    for subscription in subscribed:
        delivery_key = f"{key}:s{subscription.id}"
        body = json.dumps(
            {"id": delivery_key, "event": event, "created_at": now.isoformat(), "data": dict(data)},
            ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=_json_default,
        )
        row = insert_on_conflict(session, table).values(
            key=delivery_key, identity=f"webhook:{subscription.id}", subscription_id=subscription.id,
            agency_code=agency_code, event=event, body=body, state=PENDING, attempts=0, next_attempt_at=now,
            created_at=now, queued_at=now,
        )
        queued += session.execute(row.on_conflict_do_nothing(index_elements=[table.c.key])).rowcount
    return queued


def deliveries(
    desk: Desk, *, agency_code: Optional[str] = None, state: Optional[str] = None, limit: int = 50
) -> list[Delivery]:
    """The newest deliveries, optionally one agency's and in one state ("failed": the dead letters)."""
    t = WebhookDeliveryRow
    query = select(t).order_by(t.id.desc()).limit(limit)
    if agency_code is not None:
        query = query.where(t.agency_code == agency_code.upper())
    if state is not None:
        query = query.where(t.state == state)
    with transaction(desk.engine) as session:
        return [
            Delivery(r.key, r.subscription_id, r.agency_code, r.event, r.state, r.attempts, r.created_at,
                     r.next_attempt_at, r.sent_at, r.last_error)
            for r in session.scalars(query)
        ]


def resend(desk: Desk, key: str, *, actor: str, agency_code: Optional[str] = None) -> bool:
    """Requeue a dead-lettered delivery (same key, so a receiver that did get it can drop it).

    False when it is not failed (pending, sent, cancelled) or its subscription was revoked;
    NotFound for an unknown key or (given `agency_code`) another agency's."""
    audit.check_actor(actor)
    now = desk.now()
    with transaction(desk.writer) as session:
        row = session.scalars(
            select(WebhookDeliveryRow).where(WebhookDeliveryRow.key == key).with_for_update()
        ).first()
        if row is None or (agency_code is not None and row.agency_code != agency_code.upper()):
            raise NotFound(f"no webhook delivery {key!r}", field="key")
        subscription = session.get(WebhookSubscriptionRow, row.subscription_id)
        if row.state != "failed" or subscription is None or subscription.revoked_at is not None:
            return False
        before = {"state": row.state, "attempts": row.attempts, "last_error": row.last_error}
        row.state, row.attempts, row.next_attempt_at, row.queued_at = PENDING, 0, now, now
        row.lease_owner = row.lease_until = None
        audit.record(
            session, at=now, actor=actor, action="webhook_resend", subject=key[:64], agency_code=row.agency_code,
            before=before, after={"state": PENDING},
        )
    desk.committed(events=True)
    return True


class WebhookSender:
    """Delivers `webhook_deliveries` (see the module docstring); `start` in the gateway's event loop."""

    def __init__(
        self,
        desk: Desk,
        *,
        policy: RetryPolicy = WEBHOOK_POLICY,
        workers: int = 4,
        poll: float = 1.0,
        lease: dt.timedelta = dt.timedelta(seconds=60),
        timeout: float = 10.0,
        clock: Clock = utc_now,
        transport: Optional[httpx.AsyncBaseTransport] = None,
    ) -> None:
        self._desk = desk
        self.policy = policy
        self._timeout = timeout
        self._clock = clock
        self._transport = transport
        self._client: Optional[httpx.AsyncClient] = None
        self.table = LeasedTable(desk.engine, WebhookDeliveryRow.__table__, lease=lease)
        self.pump = Pump("webhooks", self.table, self._deliver, workers=workers, poll=poll, clock=clock)
        self.sent = self.retried = self.failed = 0

    async def start(self) -> None:
        if self._client is None:
            self._client = httpx.AsyncClient(
                timeout=self._timeout, transport=self._transport, follow_redirects=False,
                headers={"User-Agent": "sla-bot-webhooks/1"},
            )
        self.pump.start()
        self._desk.wake_webhooks = self.pump.wake

    async def stop(self, grace: float = 5.0) -> None:
        await self.pump.stop(grace)
        self._desk.wake_webhooks = lambda: None
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def _deliver(self, row: Mapping[str, Any]) -> None:
        target = await asyncio.to_thread(self._target, row["subscription_id"])
        if target is None:
            await asyncio.to_thread(self._finish, row, "cancelled", "subscription revoked")
            return
        url, secret = target
        body = row["body"]
        headers = {
            "Content-Type": "application/json; charset=utf-8",
            IDEMPOTENCY_HEADER: row["key"],
            EVENT_HEADER: row["event"],
            SIGNATURE_HEADER: signature(secret, int(time.time()), body),
        }
        after: Optional[float] = None
        assert self._client is not None, "WebhookSender.start() first"
        try:
            response = await self._client.post(url, content=body.encode(), headers=headers)
        except httpx.TimeoutException:
            error = f"no answer in {self._timeout:g} s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:300]
        else:
            if 200 <= response.status_code < 300:
                await asyncio.to_thread(self._finish, row, "sent", None)
                return
            error = f"HTTP {response.status_code}"
            after = _retry_after(response.headers.get("Retry-After"))
        now = self._clock()
        if self.policy.exhausted(row["attempts"], row["queued_at"], now):
            await asyncio.to_thread(self._finish, row, "failed", f"gave up after {row['attempts']} attempts: {error}")
            return
        self.retried += 1
        at = now + dt.timedelta(seconds=self.policy.delay(row["attempts"], after))
        await asyncio.to_thread(self.table.retry, row["id"], at, error)

    def _target(self, subscription_id: int) -> Optional[tuple[str, str]]:
        with transaction(self._desk.engine) as session:
            row = session.get(WebhookSubscriptionRow, subscription_id)
            if row is None or row.revoked_at is not None:
                return None
            return row.url, self._desk.webhook_secrets.open(row.secret_sealed)

    def _finish(self, row: Mapping[str, Any], state: str, error: Optional[str]) -> None:
        if not self.table.finish(row["id"], state, error, self._clock()):
            logger.warning("webhooks: %s was taken over by another sender before it finished", row["key"])
            return
        if state == "sent":
            self.sent += 1
        elif state == "failed":
            self.failed += 1
            logger.warning("webhooks: dead letter %s: %s", row["key"], error)


def _retry_after(value: Optional[str]) -> Optional[float]:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def _subscription(row: WebhookSubscriptionRow) -> Subscription:
    return Subscription(row.id, row.agency_code, row.url, row.created_at, row.revoked_at)


def _json_default(value: Any) -> Any:
    if isinstance(value, (dt.datetime, dt.date)):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")
