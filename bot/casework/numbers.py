"""Tracking-number allocation: AGENCY-<Buddhist year of filing>-<6 digits>, never repeated.

The serial comes from one row per (agency, year) bumped with UPDATE ... RETURNING inside the
transaction that creates the request. On PostgreSQL the UPDATE holds the row lock until that
transaction ends, so concurrent creators queue on it; on SQLite the writing transaction is
serialised (BEGIN IMMEDIATE). A rolled-back creation rolls its serial back too, so numbers are
also gap-free.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import update
from sqlalchemy.orm import Session

from bot.casework.errors import NumbersExhausted
from bot.catalog.loader import Catalog
from bot.db.dialect import insert_on_conflict
from bot.db.models import TrackingSequence
from bot.settings import TIMEZONE
from bot.tracking import COMPLAINT_CODE

BUDDHIST_ERA_OFFSET = 543
MAX_SERIAL = 999_999
_SEQUENCES = TrackingSequence.__table__


def numbers_agency(catalog: Catalog, code: str) -> bool:
    """Whether `code` may own requests and API keys: a catalog agency (CMP is for complaints)."""
    return code != COMPLAINT_CODE and catalog.agency(code) is not None


def buddhist_year(at: dt.datetime) -> int:
    """The Buddhist-era year of `at` in Thailand (a filing at 00:30 on 1 January counts as the new year)."""
    return at.astimezone(TIMEZONE).year + BUDDHIST_ERA_OFFSET


def format_number(agency_code: str, year: int, serial: int) -> str:
    return f"{agency_code}-{year:04d}-{serial:06d}"


def allocate_number(session: Session, agency_code: str, filed_at: dt.datetime) -> str:
    """The next tracking number for `agency_code` in the year of `filed_at` (in `session`'s transaction)."""
    year = buddhist_year(filed_at)
    bump = (
        update(_SEQUENCES)
        .where(_SEQUENCES.c.agency_code == agency_code, _SEQUENCES.c.year == year)
        .values(last_value=_SEQUENCES.c.last_value + 1)
        .returning(_SEQUENCES.c.last_value)
    )
    serial = session.execute(bump).scalar_one_or_none()
    if serial is None:  # first number of this agency and year; another creator may race us here
        create = insert_on_conflict(session, _SEQUENCES).values(agency_code=agency_code, year=year, last_value=0)
        session.execute(create.on_conflict_do_nothing())
        serial = session.execute(bump).scalar_one()
    if serial > MAX_SERIAL:
        raise NumbersExhausted(f"{agency_code} has used every tracking number of {year}")
    return format_number(agency_code, year, serial)
