"""Officers' accounts for the portal: who may log in, for which agency, with which role.

    officers = Officers(engine)
    officers.add("somchai", password, "DLT", display_name="สมชาย ใจดี")   # `sla-bot portal add-officer`
    account = officers.authenticate("somchai", password)   # None for any failure, alike
    account.officer   # bot.complaints.Officer("DLT", actor="officer:somchai")

Passwords are kept only as argon2id hashes (argon2-cffi's defaults, upgraded on the next login
when the parameters change). `authenticate` spends the same work on an unknown username as on a
wrong password (it verifies against a dummy hash), and says nothing about which it was: a
disabled account, an unknown name and a wrong password all return None.
"""

from __future__ import annotations

import datetime as dt
import re
import secrets
from dataclasses import dataclass
from typing import Callable, Optional

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import Engine, select

from bot.casework.errors import InvalidInput, NotFound, UnknownAgency
from bot.casework.request import bangkok_now
from bot.catalog.loader import Catalog
from bot.complaints.model import Officer
from bot.db import transaction, writer
from bot.db.models import PortalOfficerRow

ROLES = ("officer", "central")
MIN_PASSWORD = 10
MAX_PASSWORD = 200
_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,55}$")


@dataclass(frozen=True)
class Account:
    id: int
    username: str
    display_name: str
    agency_code: str
    role: str
    disabled: bool
    created_at: dt.datetime
    last_login_at: Optional[dt.datetime]

    @property
    def central(self) -> bool:
        return self.role == "central"

    @property
    def officer(self) -> Officer:
        """Who acts in the complaints domain (its audit trail names `officer:<username>`)."""
        return Officer(self.agency_code, actor=f"officer:{self.username}", central=self.central)


def normalize_username(username: str) -> str:
    return (username or "").strip().lower()


def check_username(username: str) -> str:
    name = normalize_username(username)
    if not _USERNAME.match(name):
        raise InvalidInput(
            "the username must be 3 to 56 characters: a-z, 0-9, '.', '_' or '-', starting with a letter or digit",
            field="username",
        )
    return name


def check_password(password: str) -> str:
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidInput(f"the password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters", field="password")
    return password


class Officers:
    def __init__(
        self,
        engine: Engine,
        *,
        clock: Callable[[], dt.datetime] = bangkok_now,
        hasher: Optional[PasswordHasher] = None,
    ) -> None:
        self._engine = engine
        self._writer = writer(engine)
        self.clock = clock
        self._hasher = hasher or PasswordHasher()
        self._dummy: Optional[str] = None

    def add(
        self,
        username: str,
        password: str,
        agency_code: str,
        *,
        display_name: str = "",
        central: bool = False,
        catalog: Optional[Catalog] = None,
    ) -> Account:
        """A new officer; InvalidInput for a taken username, a bad name or a short password."""
        name = check_username(username)
        check_password(password)
        code = (agency_code or "").strip().upper()
        if catalog is not None and catalog.agency(code) is None:
            raise UnknownAgency(f"unknown agency code {agency_code!r}", field="agency_code")
        shown = (display_name or "").strip()[:200] or name
        hashed = self._hasher.hash(password)
        with transaction(self._writer) as session:
            if session.scalars(select(PortalOfficerRow.id).where(PortalOfficerRow.username == name)).first():
                raise InvalidInput(f"the username {name!r} is taken", field="username")
            row = PortalOfficerRow(
                username=name, display_name=shown, agency_code=code, role="central" if central else "officer",
                password_hash=hashed, disabled=False, created_at=self.clock(),
            )
            session.add(row)
            session.flush()
            return account_of(row)

    def authenticate(self, username: str, password: str) -> Optional[Account]:
        """The account when the username and password match an enabled officer; None otherwise."""
        name = normalize_username(username)
        if not isinstance(password, str) or len(password) > MAX_PASSWORD:
            password = ""
        with transaction(self._engine) as session:
            row = session.scalars(select(PortalOfficerRow).where(PortalOfficerRow.username == name)).first()
            stored = row.password_hash if row is not None else self._dummy_hash()
            account = account_of(row) if row is not None else None
        if not self._verify(stored, password) or account is None or account.disabled:
            return None
        with transaction(self._writer) as session:
            row = session.get(PortalOfficerRow, account.id)
            if row is None or row.disabled:
                return None
            row.last_login_at = self.clock()
            if self._needs_rehash(row.password_hash):
                row.password_hash = self._hasher.hash(password)
            return account_of(row)

    def get(self, officer_id: int) -> Optional[Account]:
        with transaction(self._engine) as session:
            row = session.get(PortalOfficerRow, officer_id)
            return account_of(row) if row is not None else None

    def find(self, username: str) -> Optional[Account]:
        with transaction(self._engine) as session:
            row = session.scalars(
                select(PortalOfficerRow).where(PortalOfficerRow.username == normalize_username(username))
            ).first()
            return account_of(row) if row is not None else None

    def set_password(self, username: str, password: str) -> Account:
        check_password(password)
        hashed = self._hasher.hash(password)
        return self._update(username, password_hash=hashed)

    def set_disabled(self, username: str, disabled: bool = True) -> Account:
        return self._update(username, disabled=disabled)

    def accounts(self, agency_code: Optional[str] = None) -> list[Account]:
        query = select(PortalOfficerRow).order_by(PortalOfficerRow.agency_code, PortalOfficerRow.username)
        if agency_code:
            query = query.where(PortalOfficerRow.agency_code == agency_code.upper())
        with transaction(self._engine) as session:
            return [account_of(row) for row in session.scalars(query)]

    def _update(self, username: str, **values: object) -> Account:
        with transaction(self._writer) as session:
            row = session.scalars(
                select(PortalOfficerRow).where(PortalOfficerRow.username == normalize_username(username))
            ).first()
            if row is None:
                raise NotFound(f"no officer {username!r}", field="username")
            for key, value in values.items():
                setattr(row, key, value)
            return account_of(row)

    def _verify(self, stored: str, password: str) -> bool:
        try:
            return self._hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False

    def _needs_rehash(self, stored: str) -> bool:
        try:
            return self._hasher.check_needs_rehash(stored)
        except InvalidHashError:
            return False

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = self._hasher.hash(secrets.token_urlsafe(24))
        return self._dummy


def account_of(row: PortalOfficerRow) -> Account:
    return Account(
        row.id, row.username, row.display_name, row.agency_code, row.role, bool(row.disabled), row.created_at,
        row.last_login_at,
    )
