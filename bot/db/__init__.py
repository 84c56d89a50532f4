"""Storage: engines built once at start-up, the tables, and their migrations.

    engine = make_engine(settings.database)   # once, in the process that owns it
    migrate(engine)                           # `sla-bot db upgrade`; idempotent
    with transaction(writer(engine)) as session: ...
"""

from bot.db.engine import make_engine, transaction, writer
from bot.db.migrations import current_revision, migrate

__all__ = ["current_revision", "make_engine", "migrate", "transaction", "writer"]
