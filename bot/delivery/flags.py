"""What delivery remembers per chat identity: who blocked the bot, who was told it is down.

Opt-outs: a LINE user who blocks the account (unfollow) gets nothing pushed until they add it
again (follow). Outages: the short "the system is down" apology goes to an identity once per
outage: the first attempt that finds the service down takes the flag (`apology_due`), and the
flag is dropped when one of the identity's events is answered, or given up (the citizen is
then asked to send again, and a later failure is a new outage). A flag older than
OUTAGE_FORGOTTEN (left by a crash) no longer counts.
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Engine, delete, select, update
from sqlalchemy.orm import Session

from bot.db import transaction, writer
from bot.db.dialect import insert_on_conflict
from bot.db.models import OptOutRow, OutageRow

OUTAGE_FORGOTTEN = dt.timedelta(hours=1)


class OptOuts:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = writer(engine)

    def add(self, identity: str, now: dt.datetime) -> None:
        table = OptOutRow.__table__
        with transaction(self._writer) as session:
            row = insert_on_conflict(session, table).values(identity=identity, at=now)
            session.execute(row.on_conflict_do_nothing())

    def remove(self, identity: str) -> None:
        with transaction(self._writer) as session:
            session.execute(delete(OptOutRow.__table__).where(OptOutRow.__table__.c.identity == identity))

    def contains(self, identity: str) -> bool:
        with transaction(self._engine) as session:
            return self.contains_in(session, identity)

    @staticmethod
    def contains_in(session: Session, identity: str) -> bool:
        query = select(OptOutRow.identity).where(OptOutRow.identity == identity)
        return session.execute(query).first() is not None


class Outages:
    def __init__(self, engine: Engine) -> None:
        self._writer = writer(engine)

    def apology_due(self, identity: str, now: dt.datetime) -> bool:
        """True for the first caller of an outage (the flag is taken), False while it lasts."""
        table = OutageRow.__table__
        with transaction(self._writer) as session:
            taken = session.execute(
                insert_on_conflict(session, table).values(identity=identity, since=now).on_conflict_do_nothing()
            )
            if taken.rowcount == 1:
                return True
            stale = session.execute(
                update(table)
                .where(table.c.identity == identity, table.c.since < now - OUTAGE_FORGOTTEN)
                .values(since=now)
            )
            return stale.rowcount == 1

    @staticmethod
    def end_in(session: Session, identity: str) -> None:
        table = OutageRow.__table__
        session.execute(delete(table).where(table.c.identity == identity))
