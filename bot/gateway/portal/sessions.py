"""Portal sessions: server-side, expiring, revocable; and the CSRF token tied to each.

The cookie holds a random token (256 bits); the database keeps only its SHA-256, so a copy of
the table logs nobody in. A session ends `ABSOLUTE` after login whatever happens, after `IDLE`
without a request, when the officer logs out (revoked), and when the officer is disabled.

CSRF: every POST form carries the synchronizer token `csrf_token(token)`, an HMAC of a fixed
label under the session's own token, so it is bound to that session, needs no storage, and
dies with it. It is compared in constant time (`check_csrf`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from typing import Callable, Optional

from sqlalchemy import Engine, delete, or_, select

from bot.db import transaction, writer
from bot.db.models import PortalOfficerRow, PortalSessionRow
from bot.gateway.portal.accounts import Account, account_of

ABSOLUTE = dt.timedelta(hours=8)
IDLE = dt.timedelta(minutes=30)
# A session's last use is written at most this often (a page view is not a write each time).
TOUCH_EVERY = dt.timedelta(seconds=30)
_MAX_TOKEN = 100


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def csrf_token(token: str) -> str:
    return hmac.new(token.encode(), b"sla-bot portal csrf v1", hashlib.sha256).hexdigest()


def check_csrf(token: str, given: Optional[str]) -> bool:
    return bool(token) and isinstance(given, str) and hmac.compare_digest(csrf_token(token), given)


class Sessions:
    def __init__(
        self,
        engine: Engine,
        clock: Callable[[], dt.datetime],
        *,
        absolute: dt.timedelta = ABSOLUTE,
        idle: dt.timedelta = IDLE,
    ) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self.clock = clock
        self.absolute = absolute
        self.idle = idle

    def start(self, account: Account) -> str:
        """A new session for `account`; its token (for the cookie only). Old, dead sessions are swept."""
        token = secrets.token_urlsafe(32)
        now = self.clock()
        with transaction(self._writer) as session:
            t = PortalSessionRow
            session.execute(
                delete(t).where(
                    t.officer_id == account.id,
                    or_(t.expires_at < now, t.revoked_at.is_not(None), t.last_seen_at < now - self.idle),
                )
            )
            session.add(
                PortalSessionRow(
                    token_hash=token_hash(token), officer_id=account.id, created_at=now, last_seen_at=now,
                    expires_at=now + self.absolute,
                )
            )
        return token

    def resume(self, token: Optional[str]) -> Optional[Account]:
        """The officer of a live session (its idle clock restarted), else None."""
        if not token or len(token) > _MAX_TOKEN:
            return None
        now = self.clock()
        key = token_hash(token)
        with transaction(self._engine) as session:
            found = session.execute(
                select(PortalSessionRow, PortalOfficerRow)
                .join(PortalOfficerRow, PortalOfficerRow.id == PortalSessionRow.officer_id)
                .where(PortalSessionRow.token_hash == key)
            ).first()
            if found is None:
                return None
            row, officer = found
            if not self._alive(row, officer, now):
                return None
            account, stale = account_of(officer), now - row.last_seen_at >= TOUCH_EVERY
        if stale:
            with transaction(self._writer) as session:
                row = session.get(PortalSessionRow, key)
                if row is None or row.revoked_at is not None:
                    return None
                row.last_seen_at = max(row.last_seen_at, now)
        return account

    def end(self, token: Optional[str]) -> None:
        """Log out: the session is revoked at once (and every other request with it fails)."""
        if not token or len(token) > _MAX_TOKEN:
            return
        with transaction(self._writer) as session:
            row = session.get(PortalSessionRow, token_hash(token))
            if row is not None and row.revoked_at is None:
                row.revoked_at = self.clock()

    def end_all(self, officer_id: int) -> int:
        """Revoke every session of an officer (a disabled account, a changed password)."""
        now = self.clock()
        with transaction(self._writer) as session:
            rows = session.scalars(
                select(PortalSessionRow).where(
                    PortalSessionRow.officer_id == officer_id, PortalSessionRow.revoked_at.is_(None)
                )
            ).all()
            for row in rows:
                row.revoked_at = now
            return len(rows)

    def _alive(self, row: PortalSessionRow, officer: PortalOfficerRow, now: dt.datetime) -> bool:
        return (
            row.revoked_at is None
            and not officer.disabled
            and now < row.expires_at
            and now - row.last_seen_at < self.idle
        )
