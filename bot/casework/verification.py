"""Proving a chat identity may see a request: the last 4 digits of the applicant's phone.

The digits never reach the database or the registry: the chat side turns them into
`verifier_token(secret, number, digits)`, a keyed HMAC-SHA256, and the request keeps only a
SHA-256 of that token. Four digits are only 10,000 guesses, so failures are counted per
number and per chat identity (both stored as keyed hashes, never in clear): five in an hour
lock lookups for that number or identity for an hour. An unknown number fails exactly like a
wrong code, so numbers cannot be enumerated. A verified identity is linked to the request
(`link`): by keyed hash, and on LINE and Telegram with the identity itself beside it, to push
notices to.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from typing import Literal, Optional

from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from bot.casework.errors import InvalidDigits
from bot.db.dialect import insert_on_conflict
from bot.db.models import IdentityLinkRow, VerificationFailureRow, VerificationLockRow
from bot.text import thai_digits_to_arabic
from bot.tracking import normalize_tracking_number

VerifyResult = Literal["ok", "wrong", "locked"]
MAX_FAILURES = 5
FAILURE_WINDOW = dt.timedelta(hours=1)
LOCK_DURATION = dt.timedelta(hours=1)
_TOKEN = re.compile(r"^[0-9a-f]{64}$")
# Compared against when the number is unknown, so both paths do the same work.
_NO_VERIFIER = hashlib.sha256(b"no such request").hexdigest()
# Channels whose linked identities are kept in clear, to push notices to (see `link`).
PUSHABLE_CHANNELS = ("line", "telegram")


def normalize_digits(text: str) -> Optional[str]:
    """'๑๒๓๔', '12 34', '12-34' -> '1234'; None unless exactly four digits remain."""
    digits = re.sub(r"[\s\-.]", "", thai_digits_to_arabic(text or ""))
    return digits if re.fullmatch(r"[0-9]{4}", digits) else None


def verifier_token(secret: str, tracking_number: str, digits: str) -> str:
    """HMAC-SHA256 (hex) of the canonical number and the four digits, keyed with `secret`.

    The chat side sends this instead of the digits. Raises InvalidDigits unless `digits`
    holds exactly four (Thai or Arabic) digits.
    """
    normalized = normalize_digits(digits)
    if normalized is None:
        raise InvalidDigits("the verification code must be exactly 4 digits", field="phone_last4")
    number = normalize_tracking_number(tracking_number) or tracking_number.strip().upper()
    return keyed_hash(secret, "verifier", f"{number}:{normalized}")


def keyed_hash(secret: str, purpose: str, value: str) -> str:
    """HMAC-SHA256 (hex) of `value`, separated by `purpose` so hashes of one kind never match another."""
    if not secret:
        raise ValueError("VERIFICATION_SECRET is empty")
    return hmac.new(secret.encode(), f"{purpose}\0{value}".encode(), hashlib.sha256).hexdigest()


def stored_verifier(token: str) -> str:
    """What the request keeps of a verifier token."""
    return hashlib.sha256(token.encode()).hexdigest()


def token_matches(token: str, verifier_hash: Optional[str]) -> bool:
    """Constant-time check of a token against a stored verifier (None: unknown number)."""
    valid = bool(_TOKEN.match(token or ""))
    same = hmac.compare_digest(stored_verifier(token if valid else ""), verifier_hash or _NO_VERIFIER)
    return same and valid and verifier_hash is not None


class Attempts:
    """Failure counting and locks for one verification attempt, inside the caller's transaction."""

    def __init__(self, session: Session, secret: str, number: str, identity: str, now: dt.datetime) -> None:
        self.session = session
        self.now = now
        self.subjects = (keyed_hash(secret, "failed-number", number), keyed_hash(secret, "failed-identity", identity))

    def locked(self) -> bool:
        query = select(func.count()).where(
            VerificationLockRow.subject_hash.in_(self.subjects), VerificationLockRow.locked_until > self.now
        )
        return self.session.execute(query).scalar_one() > 0

    def fail(self) -> VerifyResult:
        """Record a failure for the number and the identity; "locked" when either reaches the limit."""
        table = VerificationFailureRow.__table__
        self.session.execute(
            delete(table).where(table.c.subject_hash.in_(self.subjects), table.c.failed_at <= self.now - FAILURE_WINDOW)
        )
        self.session.add_all([VerificationFailureRow(subject_hash=s, failed_at=self.now) for s in self.subjects])
        self.session.flush()
        result: VerifyResult = "wrong"
        for subject in self.subjects:
            recent = select(func.count()).where(
                table.c.subject_hash == subject, table.c.failed_at > self.now - FAILURE_WINDOW
            )
            if self.session.execute(recent).scalar_one() >= MAX_FAILURES:
                self._lock(subject)
                result = "locked"
        return result

    def _lock(self, subject: str) -> None:
        until = self.now + LOCK_DURATION
        locks = VerificationLockRow.__table__
        lock = insert_on_conflict(self.session, locks).values(subject_hash=subject, locked_until=until)
        self.session.execute(
            lock.on_conflict_do_update(index_elements=[locks.c.subject_hash], set_={"locked_until": until})
        )


def link(session: Session, secret: str, identity: str, request_id: int, now: dt.datetime) -> None:
    """Link a chat identity that proved the digits to the request (again: keeps the first link's time).

    The link is found by the identity's keyed hash. On a channel the bot can push to (LINE,
    Telegram) the identity itself is stored beside it, so the request's delay notices and status
    changes reach that chat (bot.casework.recipients): it is the platform's opaque id of the
    bot's chat with the citizen (`line:<userId>`, `telegram:<chat id>`), not a phone or ID
    number, and useless outside this bot's account. Web-chat sessions cannot be pushed to and
    stay hashed only. A link made before identities were stored gets it on the next verification.
    """
    links = IdentityLinkRow.__table__
    kept = identity if identity.split(":", 1)[0] in PUSHABLE_CHANNELS else None
    row = insert_on_conflict(session, links).values(
        identity_hash=identity_hash(secret, identity), request_id=request_id, linked_at=now, identity=kept
    )
    if kept is None:
        session.execute(row.on_conflict_do_nothing())
        return
    session.execute(
        row.on_conflict_do_update(index_elements=[links.c.identity_hash, links.c.request_id], set_={"identity": kept})
    )


def identity_hash(secret: str, identity: str) -> str:
    return keyed_hash(secret, "linked-identity", identity)
