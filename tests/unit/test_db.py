"""Storage: engines, migrations from empty, SQLite's sharing settings, times, the `sla-bot` commands."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from bot import cli
from bot.db import current_revision, make_engine, migrate, transaction, writer
from bot.db.models import AuditRow, Base
from tests.unit.databases import bangkok, database_url, engine  # noqa: F401

TABLES = {
    "tracking_sequences", "service_requests", "request_steps", "request_status_changes", "identity_links",
    "verification_failures", "verification_locks", "api_keys", "audit_log",
}


def test_migrations_apply_from_empty_and_match_the_models(database_url):  # noqa: F811
    eng = make_engine(database_url)
    try:
        assert current_revision(eng) is None
        assert not set(sa.inspect(eng).get_table_names()) & TABLES
        migrate(database_url)  # by URL, as `sla-bot db upgrade` does
        assert TABLES | {"alembic_version"} <= set(sa.inspect(eng).get_table_names())
        assert current_revision(eng) == "0001_casework"
        migrate(eng)  # a second run changes nothing
        with eng.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            assert compare_metadata(context, Base.metadata) == []
    finally:
        eng.dispose()


def test_concurrent_upgrades_take_turns(database_url):  # noqa: F811
    """The gateway and the action server (two processes) may both upgrade at start-up."""
    code = "import sys; from bot.db import migrate; migrate(sys.argv[1])"
    upgrades = [
        subprocess.Popen([sys.executable, "-c", code, database_url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    for upgrade in upgrades:
        _, err = upgrade.communicate(timeout=60)
        assert upgrade.returncode == 0, err
    eng = make_engine(database_url)
    assert current_revision(eng) == "0001_casework"
    eng.dispose()


def test_sqlite_is_set_up_for_two_processes_sharing_the_file(tmp_path):
    eng = make_engine(f"sqlite:///{tmp_path / 'nested' / 'dir' / 'x.db'}")  # the directory is created
    with eng.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 5000
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    eng.dispose()


def test_sqlite_writers_wait_for_each_other_instead_of_failing(tmp_path):
    """A write transaction takes the lock first (BEGIN IMMEDIATE): a second writer waits its turn."""
    url = f"sqlite:///{tmp_path / 'x.db'}"
    migrate(url)
    first, second = make_engine(url), make_engine(url)  # as two processes would
    held, release, done = threading.Event(), threading.Event(), []

    def hold_lock() -> None:
        with transaction(writer(first)) as session:
            session.add(_audit("first"))
            session.flush()
            held.set()
            release.wait(5)

    thread = threading.Thread(target=hold_lock)
    thread.start()
    held.wait(5)
    timer = threading.Timer(0.3, release.set)
    timer.start()
    with transaction(writer(second)) as session:  # waits ~0.3 s for the first, does not fail
        session.add(_audit("second"))
        done.append(True)
    thread.join()
    with transaction(first) as session:
        assert sorted(session.scalars(sa.select(AuditRow.subject))) == ["first", "second"]
    first.dispose()
    second.dispose()


def test_times_are_stored_as_utc_and_read_back_in_bangkok(engine):  # noqa: F811
    at = dt.datetime(2026, 12, 31, 17, 30, tzinfo=dt.timezone.utc)
    with transaction(writer(engine)) as session:
        session.add(_audit("t", at))
    with transaction(engine) as session:
        stored = session.scalars(sa.select(AuditRow.at)).one()
    assert stored == at and stored.utcoffset() == dt.timedelta(hours=7)
    assert stored == bangkok(2027, 1, 1, 0, 30)
    with pytest.raises(sa.exc.StatementError, match="naive datetime"):
        with transaction(writer(engine)) as session:
            session.add(_audit("naive", dt.datetime(2026, 1, 1)))


def test_foreign_keys_are_enforced(engine):  # noqa: F811
    with pytest.raises(sa.exc.IntegrityError):
        with transaction(writer(engine)) as session:
            session.execute(
                sa.text("INSERT INTO request_steps (request_id, step_index, entered_at) VALUES (999, 0, :at)"),
                {"at": dt.datetime(2026, 1, 1)},
            )


def test_the_db_and_agency_key_commands(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "")  # the default: a SQLite file under DATA_DIR
    assert cli.main(["db", "upgrade"]) == 0
    assert "0001_casework" in capsys.readouterr().out
    assert (tmp_path / "sla-bot.db").exists()

    assert cli.main(["agency-key", "create", "dlt", "--name", "DLT e-Service"]) == 0
    created = capsys.readouterr().out
    key = next(word for word in created.split() if word.startswith("slb_"))
    key_id = key.split("_")[1]
    assert "cannot be shown again" in created

    assert cli.main(["agency-key", "list"]) == 0
    listed = capsys.readouterr().out
    assert key_id in listed and "DLT e-Service" in listed and "active" in listed and key not in listed

    assert cli.main(["agency-key", "create", "NOPE"]) == 1
    assert "unknown agency" in capsys.readouterr().err
    assert cli.main(["agency-key", "revoke", "0000000000000000"]) == 1
    assert cli.main(["agency-key", "revoke", key_id]) == 0
    assert cli.main(["agency-key", "list", "DLT"]) == 0
    assert "revoked" in capsys.readouterr().out
    assert key.encode() not in (tmp_path / "sla-bot.db").read_bytes()


def _audit(subject: str, at: dt.datetime | None = None) -> AuditRow:
    return AuditRow(at=at or bangkok(2026, 1, 1), actor="cli", action="test", subject=subject)
