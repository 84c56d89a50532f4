"""Alembic migrations, run programmatically: no alembic.ini, the URL comes from the caller.

`migrate(url)` brings a database to the newest revision; `make run` (through
`sla-bot db upgrade`) and the tests call it. New revision: write a file under `versions/`
by hand, or `alembic -x url=sqlite:///var/x.db revision --autogenerate` with a config made
by `alembic_config()`.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine

from bot.db.engine import make_engine, writer

HERE = Path(__file__).resolve().parent


def alembic_config(engine: Engine) -> Config:
    config = Config()
    config.set_main_option("script_location", str(HERE))
    config.attributes["engine"] = engine
    return config


def migrate(url_or_engine: str | Engine, revision: str = "head") -> None:
    """Upgrade the database to `revision` (default: the newest), creating the tables if needed."""
    engine = make_engine(url_or_engine) if isinstance(url_or_engine, str) else url_or_engine
    try:
        command.upgrade(alembic_config(writer(engine)), revision)
    finally:
        if isinstance(url_or_engine, str):
            engine.dispose()


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None when never migrated)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()
