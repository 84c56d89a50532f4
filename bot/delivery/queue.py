"""The durable queue both directions share: rows claimed under a lease, per identity in order.

The inbox (`inbound_events`) and the outbox (`outbound_messages`) are tables with the same
working columns: `identity`, `state` ("pending" until handled), `attempts`, `next_attempt_at`,
`lease_owner`, `lease_until`. A `LeasedTable` hands their pending rows to one worker at a time:

* Only the **head** of an identity is claimable: its oldest pending row. Later rows of that
  identity wait until it is done or failed, also while it waits for a retry, so one identity's
  rows are handled strictly in order and one at a time, while other identities run concurrently.
* A claim takes a **lease** (owner, until) in the same transaction that reads the row. On
  PostgreSQL the read is `FOR UPDATE SKIP LOCKED`, so replicas claiming at once never take the
  same row; a row whose lease is live is skipped. On SQLite the claim runs in a write
  transaction (BEGIN IMMEDIATE), which serialises claimers. The pump renews its leases while it
  works (`renew`); a replica that dies leaves leases that run out, and another takes the rows over.
* Finishing (`finish`, `retry`) only touches a row still leased by the caller: a worker that
  lost its lease (paused past it) cannot overwrite what the new owner did.

`Pump` runs the claiming loop in asyncio: at most `workers` rows in flight, each given to
`work(row)`, the leases renewed every third of the lease, database calls in threads.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import random
import secrets
import socket
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Iterable, Mapping, Optional

from sqlalchemy import Engine, Table, and_, bindparam, case, exists, func, or_, select, update

from bot.db import transaction, writer

logger = logging.getLogger(__name__)

PENDING = "pending"
Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def new_owner() -> str:
    """A lease owner id unique to this process and queue: host, pid-ish randomness."""
    return f"{socket.gethostname()[:40]}:{secrets.token_hex(6)}"


@dataclass(frozen=True)
class RetryPolicy:
    """How long to wait between attempts, and when to give up.

    The wait after attempt n is `first_delay * 2**(n-1)` capped at `max_delay`, less up to 10%
    jitter (so rows failing together do not retry together); a platform's `Retry-After` replaces
    it (capped at `max_retry_after`). Give up once `max_attempts` attempts failed or the row is
    `max_age` old; unexpected errors (not the service saying "not now") give up after `max_errors`.
    """

    first_delay: float = 2.0
    max_delay: float = 60.0
    max_attempts: int = 20
    max_age: dt.timedelta = dt.timedelta(minutes=15)
    max_errors: int = 5
    max_retry_after: float = 3600.0

    def delay(self, attempts: int, after: Optional[float] = None) -> float:
        if after is not None:
            return min(max(0.0, after), self.max_retry_after)
        backoff = min(self.max_delay, self.first_delay * 2 ** max(0, attempts - 1))
        return backoff * (1 - 0.1 * random.random())

    def exhausted(self, attempts: int, since: dt.datetime, now: dt.datetime, *, unexpected: bool = False) -> bool:
        limit = self.max_errors if unexpected else self.max_attempts
        return attempts >= limit or now - since >= self.max_age


class LeasedTable:
    """Claiming, renewing and finishing rows of one queue table (see the module docstring)."""

    def __init__(self, engine: Engine, table: Table, *, lease: dt.timedelta, owner: str | None = None) -> None:
        self.engine = engine
        self.writer = writer(engine)
        self.table = table
        self.lease = lease
        self.owner = owner or new_owner()
        self._postgres = engine.dialect.name == "postgresql"
        # Built once: an idle pump asks every second, and building this query cost more than
        # running it (parameters: now, limit).
        self._claimable = self._claimable_query()

    def _claimable_query(self):
        t = self.table
        now = bindparam("now", type_=t.c.next_attempt_at.type)
        earlier = t.alias("earlier")
        busy = t.alias("busy")
        is_head = ~exists().where(earlier.c.identity == t.c.identity, earlier.c.state == PENDING, earlier.c.id < t.c.id)
        # Belt and braces: never a second row of an identity while one is leased (e.g. a row that
        # committed after a later one of the same identity had been claimed).
        not_busy = ~exists().where(
            busy.c.identity == t.c.identity, busy.c.state == PENDING, busy.c.id != t.c.id, busy.c.lease_until > now
        )
        return (
            select(t.c.id)
            .where(
                t.c.state == PENDING,
                t.c.next_attempt_at <= now,
                or_(t.c.lease_until.is_(None), t.c.lease_until <= now),
                is_head,
                not_busy,
            )
            .order_by(t.c.id)
            .limit(bindparam("limit"))
        )

    def claim(self, limit: int, clock: Clock) -> list[Mapping[str, Any]]:
        """Lease up to `limit` claimable rows (heads of their identities, due, not leased); their values.

        The lease starts when the write lock is held, not when the claim was asked for: a claim
        that waited for the lock (another replica writing) must not be born expired."""
        if limit <= 0:
            return []
        with transaction(self.engine) as session:  # a cheap read first: an idle queue never takes the write lock
            if session.execute(self._claimable, {"now": clock(), "limit": 1}).first() is None:
                return []
        t = self.table
        with transaction(self.writer) as session:
            session.connection()  # SQLite: BEGIN IMMEDIATE waits here for the write lock
            now = clock()
            query = self._claimable.with_for_update(skip_locked=True, of=t) if self._postgres else self._claimable
            ids = list(session.scalars(query, {"now": now, "limit": limit}))
            if not ids:
                return []
            session.execute(
                update(t)
                .where(t.c.id.in_(ids))
                .values(lease_owner=self.owner, lease_until=now + self.lease, attempts=t.c.attempts + 1)
            )
            rows = session.execute(select(t).where(t.c.id.in_(ids)).order_by(t.c.id)).mappings().all()
            return [dict(row) for row in rows]

    def renew(self, ids: Iterable[int], now: dt.datetime) -> set[int]:
        """Extend the leases this owner still holds; the ids it lost."""
        ids = set(ids)
        if not ids:
            return set()
        t = self.table
        with transaction(self.writer) as session:
            session.execute(
                update(t)
                .where(t.c.id.in_(ids), t.c.lease_owner == self.owner, t.c.state == PENDING)
                .values(lease_until=now + self.lease)
            )
            held = set(session.scalars(select(t.c.id).where(t.c.id.in_(ids), t.c.lease_owner == self.owner)))
        return ids - held

    def leased(self, row_id: int):
        """The condition "still leased by this owner and pending", for finishing updates."""
        t = self.table
        return and_(t.c.id == row_id, t.c.lease_owner == self.owner, t.c.state == PENDING)

    def finish(self, row_id: int, state: str, error: Optional[str], now: dt.datetime) -> bool:
        """Take the row out of the queue as `state` ("sent" also stamps `sent_at`), if this owner
        still holds it; False when another sender took it over in the meantime."""
        values: dict[str, Any] = {"state": state, "lease_owner": None, "lease_until": None, "last_error": error}
        if state == "sent":
            values["sent_at"] = now
        with transaction(self.writer) as session:
            return session.execute(update(self.table).where(self.leased(row_id)).values(**values)).rowcount == 1

    def retry(self, row_id: int, at: dt.datetime, error: str) -> bool:
        """Back to the queue, due at `at`."""
        t = self.table
        with transaction(self.writer) as session:
            result = session.execute(
                update(t)
                .where(self.leased(row_id))
                .values(next_attempt_at=at, lease_owner=None, lease_until=None, last_error=error[:500])
            )
            return result.rowcount == 1

    def release(self, ids: Iterable[int]) -> None:
        """Give rows back untouched (shutting down mid-attempt): the attempt does not count."""
        ids = list(ids)
        if not ids:
            return
        t = self.table
        with transaction(self.writer) as session:
            session.execute(
                update(t)
                .where(t.c.id.in_(ids), t.c.lease_owner == self.owner, t.c.state == PENDING)
                .values(
                    lease_owner=None, lease_until=None, attempts=case((t.c.attempts > 0, t.c.attempts - 1), else_=0)
                )
            )

    def release_all(self) -> int:
        """Free every lease, whoever holds it: only for a database one process uses (SQLite at start)."""
        t = self.table
        with transaction(self.writer) as session:
            result = session.execute(
                update(t)
                .where(t.c.state == PENDING, t.c.lease_owner.is_not(None))
                .values(lease_owner=None, lease_until=None)
            )
            return result.rowcount

    def counts(self, now: dt.datetime, since: dt.datetime, time_column: str) -> dict[str, Any]:
        """Pending rows, the oldest one's age in seconds, and failed rows since `since`."""
        t = self.table
        stamp = t.c[time_column]
        with transaction(self.engine) as session:
            pending, oldest = session.execute(
                select(func.count(), func.min(stamp)).where(t.c.state == PENDING)
            ).one()
            failed = session.execute(
                select(func.count()).where(t.c.state == "failed", stamp >= since)
            ).scalar_one()
        age = max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0
        return {"pending": pending, "oldest_pending_seconds": round(age, 1), "failed_24h": failed}


class Pump:
    """Claims rows of a `LeasedTable` and runs `work(row)` for each, `workers` at a time."""

    def __init__(
        self,
        name: str,
        table: LeasedTable,
        work: Callable[[Mapping[str, Any]], Awaitable[None]],
        *,
        workers: int,
        poll: float,
        clock: Clock,
    ) -> None:
        self.name = name
        self.table = table
        self._work = work
        self._workers = workers
        self._poll = poll
        self._clock = clock
        self._inflight: dict[int, asyncio.Task] = {}
        self._wake: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: list[asyncio.Task] = []
        self._stopping = False
        self._db_trouble = False

    @property
    def running(self) -> bool:
        return bool(self._tasks) and not self._stopping

    def start(self) -> None:
        if self._tasks:
            return
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._stopping = False
        self._tasks = [
            asyncio.create_task(self._run(), name=f"{self.name}-claim"),
            asyncio.create_task(self._heartbeat(), name=f"{self.name}-lease"),
        ]

    def wake(self) -> None:
        """Claim now rather than at the next poll; callable from any thread."""
        loop, event = self._loop, self._wake
        if loop is None or event is None or loop.is_closed():
            return
        try:
            if asyncio.get_running_loop() is loop:
                event.set()
                return
        except RuntimeError:
            pass
        loop.call_soon_threadsafe(event.set)

    async def stop(self, grace: float = 5.0) -> None:
        """Stop claiming; let the rows in flight finish for `grace` seconds, then give them back."""
        if not self._tasks:
            return
        self._stopping = True
        self.wake()
        claim, beat = self._tasks
        await asyncio.gather(claim, return_exceptions=True)
        inflight = dict(self._inflight)
        if inflight:
            _, unfinished = await asyncio.wait(inflight.values(), timeout=grace)
            for task in unfinished:
                task.cancel()
            await asyncio.gather(*unfinished, return_exceptions=True)
            cut = [row_id for row_id, task in inflight.items() if task in unfinished]
            if cut:
                await asyncio.to_thread(self.table.release, cut)
                logger.info("%s: %d row(s) given back unfinished at shutdown", self.name, len(cut))
        beat.cancel()
        await asyncio.gather(beat, return_exceptions=True)
        self._tasks = []
        self._inflight.clear()

    async def _run(self) -> None:
        assert self._wake is not None
        while not self._stopping:
            self._wake.clear()
            free = self._workers - len(self._inflight)
            if free > 0:
                try:
                    rows = await asyncio.to_thread(self.table.claim, free, self._clock)
                    if self._db_trouble:
                        logger.info("%s: the database answers again", self.name)
                        self._db_trouble = False
                except Exception as exc:  # the database is down or busy: keep trying, quietly
                    if not self._db_trouble:
                        logger.warning("%s: cannot claim work: %s", self.name, type(exc).__name__)
                        self._db_trouble = True
                    rows = []
                for row in rows:
                    task = asyncio.create_task(self._one(row), name=f"{self.name}-{row['id']}")
                    self._inflight[row["id"]] = task
                if rows and len(rows) == free:
                    continue  # maybe more: claim again as soon as a worker is free
            try:
                await asyncio.wait_for(self._wake.wait(), self._poll)
            except asyncio.TimeoutError:
                pass

    async def _one(self, row: Mapping[str, Any]) -> None:
        try:
            await self._work(row)
        except asyncio.CancelledError:
            raise
        except Exception:  # work() handles its own outcomes; this is a bug, keep the pump alive
            logger.exception("%s: row %s crashed its worker", self.name, row.get("id"))
        finally:
            self._inflight.pop(row["id"], None)
            if self._wake is not None:
                self._wake.set()

    async def _heartbeat(self) -> None:
        period = max(0.05, self.table.lease.total_seconds() / 3)
        while True:
            await asyncio.sleep(period)
            ids = list(self._inflight)
            if not ids:
                continue
            try:
                lost = await asyncio.to_thread(self.table.renew, ids, self._clock())
            except Exception as exc:
                logger.warning("%s: cannot renew leases: %s", self.name, type(exc).__name__)
                continue
            if lost:
                logger.warning("%s: lost the lease of %d row(s) (another replica took them over)", self.name, len(lost))
