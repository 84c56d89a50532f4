"""Alembic environment: runs inside `bot.db.migrate`, on the engine it is given.

The whole upgrade is one transaction on both databases (SQLite's DDL is transactional too).
PostgreSQL: concurrent upgrades take turns on an advisory lock. SQLite: foreign keys are
switched off for the upgrade, because a batch migration rebuilds a table by dropping it, and
with foreign keys on that drop would cascade-delete the child rows; they are checked before
commit instead.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import text

from bot.db.models import Base

# An arbitrary, fixed key: concurrent upgrades of one PostgreSQL database take turns.
_PG_LOCK_KEY = 7_301_269_001

config = context.config
engine = config.attributes["engine"]

with engine.connect() as connection:
    sqlite = connection.dialect.name == "sqlite"
    if sqlite:  # outside any transaction, where SQLite accepts this pragma
        connection.connection.driver_connection.execute("PRAGMA foreign_keys=OFF")
    try:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            render_as_batch=sqlite,  # SQLite cannot ALTER most things
            transactional_ddl=True,
        )
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
            context.run_migrations()
            if sqlite and connection.exec_driver_sql("PRAGMA foreign_key_check").first() is not None:
                raise RuntimeError("the migration left rows that break foreign keys; nothing was changed")
    finally:
        if sqlite:
            connection.connection.driver_connection.execute("PRAGMA foreign_keys=ON")
