"""Storage: engines, migrations from empty and from 0001 with data, SQLite's sharing settings, times,
the `sla-bot` commands."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from bot import cli
from bot.casework import Registry
from bot.catalog import load_catalog
from bot.db import current_revision, make_engine, migrate, transaction, writer
from bot.db.migrations import alembic_config
from bot.db.models import AuditRow, Base, ServiceRequestRow
from bot.settings import PROJECT_ROOT
from tests.unit.databases import bangkok, database_url, engine  # noqa: F401

HEAD = ScriptDirectory.from_config(alembic_config(None)).get_current_head()
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
        assert current_revision(eng) == HEAD
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
    assert current_revision(eng) == HEAD
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
    assert f"at revision {HEAD}" in capsys.readouterr().out
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


def test_due_dates_migrate_from_0001_with_requests_and_back(database_url):  # noqa: F811
    """0002_due_dates on a database with requests: they keep everything and get NULL due dates
    (not computed yet), which `recompute_due_dates` fills; the downgrade drops the columns only."""
    migrate(database_url, "0001_casework")
    eng = make_engine(database_url)
    filed = dt.datetime(2026, 5, 1, 3, 0)  # naive UTC, as stored: Friday 10:00 in Bangkok
    try:
        with eng.begin() as connection:
            for serial, status, closed in ((1, "received", None), (2, "completed", filed + dt.timedelta(days=30))):
                connection.execute(
                    sa.text(
                        "INSERT INTO service_requests (id, tracking_number, agency_code, service_id, office,"
                        " verifier_hash, status, current_step, submitted_at, updated_at, closed_at)"
                        " VALUES (:id, :number, 'DCA', 'passport', 'x', 'h', :status, 0, :at, :at, :closed)"
                    ),
                    {"id": serial, "number": f"DCA-2569-{serial:06d}", "status": status, "at": filed, "closed": closed},
                )
                connection.execute(
                    sa.text("INSERT INTO request_steps (request_id, step_index, entered_at) VALUES (:id, 0, :at)"),
                    {"id": serial, "at": filed},
                )
                connection.execute(
                    sa.text("INSERT INTO request_status_changes (request_id, to_status, at) VALUES (:id, :s, :at)"),
                    {"id": serial, "s": status, "at": closed or filed},
                )
        migrate(eng, "0002_due_dates")
        assert current_revision(eng) == "0002_due_dates"
        columns = {c["name"] for c in sa.inspect(eng).get_columns("service_requests")}
        assert {"due_at", "due_basis"} <= columns
        indexes = {i["name"]: i["column_names"] for i in sa.inspect(eng).get_indexes("service_requests")}
        assert indexes["ix_service_requests_agency_due"] == ["agency_code", "due_basis", "due_at"]
        query = sa.text("SELECT tracking_number, status, due_at, due_basis FROM service_requests ORDER BY id")
        with eng.connect() as connection:
            assert [tuple(r) for r in connection.execute(query)] == [
                ("DCA-2569-000001", "received", None, None), ("DCA-2569-000002", "completed", None, None),
            ]

        migrate(eng)
        catalog = load_catalog(PROJECT_ROOT / "sla_catalog")
        now = dt.datetime(2026, 7, 1, 10, 0, tzinfo=dt.timezone.utc)
        registry = Registry(eng, "secret", lambda: catalog, clock=lambda: now)
        # Not computed yet, yet judged right (in Python, on the way): both are late by now.
        assert [r.tracking_number for r in registry.list_for_agency("DCA", late=True)] == [
            "DCA-2569-000002", "DCA-2569-000001",
        ]
        assert registry.recompute_due_dates() == 0  # the listing stored what it computed
        with eng.connect() as connection:
            stored = connection.execute(sa.text("SELECT due_at, due_basis FROM service_requests")).all()
        assert all(due is not None and basis == registry.sla.basis() for due, basis in stored)
        for request in registry.list_for_agency("DCA"):
            assert registry.assess(request).state in ("late", "completed_late")
    finally:
        eng.dispose()

    back = make_engine(database_url)
    try:
        command.downgrade(alembic_config(writer(back)), "0001_casework")
        assert current_revision(back) == "0001_casework"
        columns = {c["name"] for c in sa.inspect(back).get_columns("service_requests")}
        assert not {"due_at", "due_basis"} & columns
        with back.connect() as connection:
            assert connection.execute(sa.text("SELECT count(*) FROM request_steps")).scalar() == 2
            assert connection.execute(sa.text("SELECT count(*) FROM service_requests")).scalar() == 2
    finally:
        back.dispose()


def test_db_upgrade_computes_the_missing_due_dates(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.setenv("DATABASE_URL", "")
    url = f"sqlite:///{tmp_path / 'sla-bot.db'}"
    migrate(url)
    catalog = load_catalog(PROJECT_ROOT / "sla_catalog")
    eng = make_engine(url)
    try:
        registry = Registry(eng, "secret", lambda: catalog)
        number = registry.create_request("DCA", "passport", "x", "1234", actor="k").tracking_number
        with eng.begin() as connection:  # as rows filed before 0002_due_dates are
            connection.execute(sa.text("UPDATE service_requests SET due_at = NULL, due_basis = NULL"))
        assert cli.main(["db", "upgrade"]) == 0
        assert "Recomputed 1 requests' SLA due dates" in capsys.readouterr().out
        with transaction(eng) as session:
            due = session.scalars(sa.select(ServiceRequestRow.due_at)).one()
        assert due is not None and due == registry.assess(registry.get(number)).due_at
        assert cli.main(["db", "upgrade"]) == 0
        assert "Recomputed" not in capsys.readouterr().out  # nothing left to do
    finally:
        eng.dispose()


def _audit(subject: str, at: dt.datetime | None = None) -> AuditRow:
    return AuditRow(at=at or bangkok(2026, 1, 1), actor="cli", action="test", subject=subject)
