"""Database engines, built once at start-up (never at import) by whoever owns the process.

SQLite is the embedded default and its file is shared by the action server and the gateway,
so every connection turns on WAL (readers never wait for the writer), a busy timeout (a
writer waits for another instead of failing at once) and foreign keys (off by default in
SQLite). pysqlite's own transaction handling is switched off and SQLAlchemy emits BEGIN
itself: writes use BEGIN IMMEDIATE, taking the write lock up front, because a deferred
transaction that reads and then writes can fail with "database is locked" without waiting.
PostgreSQL comes through `DATABASE_URL`.
"""

from __future__ import annotations

from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

BUSY_TIMEOUT_SECONDS = 5.0
# Execution option a write session sets; SQLite begins such transactions IMMEDIATE.
_WRITE = "sla_bot_write"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """An engine for `url` (a SQLAlchemy URL), with the SQLite settings above when it is SQLite."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        kwargs.setdefault("pool_pre_ping", True)
        return create_engine(url, **kwargs)
    if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    connect_args = {"timeout": BUSY_TIMEOUT_SECONDS, "check_same_thread": False, **kwargs.pop("connect_args", {})}
    engine = create_engine(url, connect_args=connect_args, **kwargs)
    event.listen(engine, "connect", _sqlite_connect)
    event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # SQLAlchemy emits BEGIN (see _sqlite_begin)
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA busy_timeout={int(BUSY_TIMEOUT_SECONDS * 1000)}")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA synchronous=NORMAL")  # safe with WAL; a commit does not wait for fsync
    cursor.close()


def _sqlite_begin(connection: Any) -> None:
    write = connection.get_execution_options().get(_WRITE, False)
    connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def writer(engine: Engine) -> Engine:
    """The same engine (and pool), marked so its transactions take SQLite's write lock first."""
    return engine.execution_options(**{_WRITE: True})


@contextmanager
def transaction(engine: Engine) -> Iterator[Session]:
    """A short session in one transaction, committed on success and rolled back on error.

    Pass `writer(engine)` for a transaction that writes. Objects stay readable after the
    commit (`expire_on_commit=False`), but callers turn them into plain values before leaving.
    """
    with Session(engine, expire_on_commit=False) as session, session.begin():
        yield session
