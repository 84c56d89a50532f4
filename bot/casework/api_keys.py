"""Agencies' API keys: shown once when created, stored only as a SHA-256 hash.

A key reads `slb_<key id>_<secret>`: the id (also the key's public name in audit rows and
`sla-bot agency-key list`) finds the one row to compare, so checking a key costs one indexed
read and one constant-time comparison. The secret has 256 bits of entropy, so a plain SHA-256
is enough (no slow hash needed: nobody can guess it).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Callable, Optional

from sqlalchemy import Engine, select

from bot.casework import audit
from bot.casework.errors import InvalidInput, NotFound, UnknownAgency
from bot.casework.numbers import numbers_agency
from bot.casework.request import bangkok_now
from bot.catalog.loader import Catalog
from bot.db import transaction, writer
from bot.db.models import ApiKeyRow
from bot.settings import TIMEZONE

PREFIX = "slb"
_KEY = re.compile(rf"^{PREFIX}_([0-9a-f]{{16}})_([A-Za-z0-9_-]{{43}})$")
MAX_NAME = 200


@dataclass(frozen=True)
class ApiKeyInfo:
    key_id: str
    agency_code: str
    name: str
    created_at: dt.datetime
    revoked_at: Optional[dt.datetime]

    @property
    def active(self) -> bool:
        return self.revoked_at is None


@dataclass(frozen=True)
class CreatedKey:
    """`key` is the only copy of the secret: print it once, it cannot be read back."""

    info: ApiKeyInfo
    key: str


@dataclass(frozen=True)
class Principal:
    """Who an authenticated API call acts as."""

    agency_code: str
    key_id: str


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


class ApiKeys:
    def __init__(
        self,
        engine: Engine,
        *,
        catalog: Callable[[], Catalog],
        clock: Callable[[], dt.datetime] = bangkok_now,
    ) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self._catalog = catalog
        self._clock = clock

    def create(self, agency_code: str, name: str = "", *, actor: str = audit.CLI) -> CreatedKey:
        code = (agency_code or "").strip().upper()
        if not numbers_agency(self._catalog(), code):
            raise UnknownAgency(f"unknown agency code {agency_code!r}", field="agency_code")
        name = (name or "").strip() or code
        if len(name) > MAX_NAME:
            raise InvalidInput(f"name must be at most {MAX_NAME} characters", field="name")
        key_id = secrets.token_hex(8)
        key = f"{PREFIX}_{key_id}_{secrets.token_urlsafe(32)}"
        now = self._clock().astimezone(TIMEZONE)
        with transaction(self._writer) as session:
            row = ApiKeyRow(key_id=key_id, agency_code=code, name=name, key_hash=hash_key(key), created_at=now)
            session.add(row)
            audit.record(
                session, at=now, actor=actor, action="key_create", subject=key_id, agency_code=code,
                after={"key_id": key_id, "agency_code": code, "name": name},
            )
            return CreatedKey(_info(row), key)

    def authenticate(self, key: str) -> Optional[Principal]:
        """The agency and key id a presented key acts as; None for a malformed, unknown or revoked key."""
        match = _KEY.match(key or "")
        if not match:
            return None
        with transaction(self._engine) as session:
            row = session.get(ApiKeyRow, match.group(1))
            if row is None or not hmac.compare_digest(row.key_hash, hash_key(key)) or row.revoked_at is not None:
                return None
            return Principal(row.agency_code, row.key_id)

    def revoke(self, key_id: str, *, actor: str = audit.CLI) -> ApiKeyInfo:
        """Revoke a key at once; revoking it again changes nothing. NotFound for an unknown id."""
        now = self._clock().astimezone(TIMEZONE)
        with transaction(self._writer) as session:
            row = session.get(ApiKeyRow, key_id, with_for_update=True)
            if row is None:
                raise NotFound(f"no API key {key_id!r}", field="key_id")
            if row.revoked_at is None:
                row.revoked_at = now
                audit.record(
                    session, at=now, actor=actor, action="key_revoke", subject=key_id, agency_code=row.agency_code,
                    before={"revoked_at": None}, after={"revoked_at": now},
                )
            return _info(row)

    def list_keys(self, agency_code: Optional[str] = None) -> list[ApiKeyInfo]:
        query = select(ApiKeyRow).order_by(ApiKeyRow.agency_code, ApiKeyRow.created_at)
        if agency_code:
            query = query.where(ApiKeyRow.agency_code == agency_code.upper())
        with transaction(self._engine) as session:
            return [_info(row) for row in session.scalars(query)]


def _info(row: ApiKeyRow) -> ApiKeyInfo:
    return ApiKeyInfo(row.key_id, row.agency_code, row.name, row.created_at, row.revoked_at)
