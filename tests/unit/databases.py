"""Database fixtures for the storage and registry tests: SQLite always, PostgreSQL when
`TEST_DATABASE_URL` is set (CI sets it). Each PostgreSQL test gets a fresh schema, dropped
afterwards, so runs never collide and nothing touches the database's own tables.

Import the fixtures into a test module: `from tests.unit.databases import database_url, engine  # noqa: F401`.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
from typing import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from bot.db import make_engine, migrate
from bot.settings import TIMEZONE

PG_ENV = "TEST_DATABASE_URL"


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty database: a fresh SQLite file, or a fresh schema in TEST_DATABASE_URL's database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'casework.db'}"
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"{PG_ENV} is not set (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    schema = f"test_{secrets.token_hex(6)}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()


@pytest.fixture
def engine(database_url: str) -> Iterator[Engine]:
    """A migrated database's engine."""
    engine = make_engine(database_url)
    migrate(engine)
    yield engine
    engine.dispose()


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta: float) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


def bangkok(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=TIMEZONE)
