"""Status benchmark (`make bench-status`; app environment): the registry at 100,000 requests.

Seeds N requests (default 100,000, over five agencies) straight into the tables, in SQLite and
in PostgreSQL (TEST_DATABASE_URL, a scratch schema dropped afterwards), then times the queries
the bot and the agency API make: one request by number, a verification, an agency's page of
requests, and its page of late requests. Then starts the real stack on the seeded SQLite file
and times status lookups through the web chat (a linked chat: no code asked). Prints a table,
writes reports/status/bench.md and the raw timings to reports/status/bench.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import httpx
from sqlalchemy import insert
from sqlalchemy.engine import make_url

from bot.casework.registry import Registry
from bot.casework.verification import stored_verifier, verifier_token
from bot.catalog import load_catalog
from bot.db import make_engine, migrate, transaction
from bot.db.models import ServiceRequestRow, StatusChangeRow, StepRow, TrackingSequence
from bot.runtime.stack import Stack, private_settings
from bot.settings import PROJECT_ROOT, TIMEZONE

CATALOG = load_catalog(PROJECT_ROOT / "sla_catalog")
MIX = (("DLT", "vehicle_tax_renewal"), ("DCA", "passport"), ("BORA", "id_card"),
       ("LAO", "food_shop_permit"), ("DOE", "foreign_worker_permit"))
STATUSES = ("received", "in_progress", "in_progress", "waiting_for_citizen", "completed")


def seed(engine, secret: str, count: int) -> list[str]:
    """`count` requests filed over the last 60 days; the numbers of the first 1,000."""
    now = dt.datetime.now(TIMEZONE)
    per_agency = {code: 0 for code, _ in MIX}
    numbers: list[str] = []
    batch = 5000
    with transaction(engine) as session:
        for start in range(0, count, batch):
            requests, steps, changes = [], [], []
            for i in range(start, min(count, start + batch)):
                code, service_id = MIX[i % len(MIX)]
                per_agency[code] += 1
                number = f"{code}-2569-{per_agency[code]:06d}"
                filed = now - dt.timedelta(minutes=(i * 53) % (60 * 24 * 60))
                status = STATUSES[i % len(STATUSES)]
                requests.append(dict(
                    id=i + 1, tracking_number=number, agency_code=code, service_id=service_id, office="bench",
                    verifier_hash=stored_verifier(verifier_token(secret, number, "1234")), status=status,
                    current_step=0, submitted_at=filed, updated_at=filed,
                    closed_at=filed if status == "completed" else None,
                ))
                steps.append(dict(request_id=i + 1, step_index=0, entered_at=filed))
                changes.append(dict(request_id=i + 1, from_status=None, to_status=status, at=filed))
                if len(numbers) < 1000:
                    numbers.append(number)
            session.execute(insert(ServiceRequestRow), requests)
            session.execute(insert(StepRow), steps)
            session.execute(insert(StatusChangeRow), changes)
        session.execute(insert(TrackingSequence), [
            dict(agency_code=code, year=2569, last_value=n) for code, n in per_agency.items()
        ])
    return numbers


def timed(run: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        out.append((time.perf_counter() - started) * 1000)
    return out


def registry_queries(url: str, count: int) -> dict[str, list[float]]:
    engine = make_engine(url)
    migrate(engine)
    secret = secrets.token_hex(16)
    started = time.perf_counter()
    numbers = seed(engine, secret, count)
    print(f"  seeded {count:,} requests in {time.perf_counter() - started:.1f} s", flush=True)
    registry = Registry(engine, secret, lambda: CATALOG)
    cursor = iter(numbers * 10)
    token = {n: verifier_token(secret, n, "1234") for n in numbers}
    results = {
        "get one request": timed(lambda: registry.get(next(cursor)), 500),
        "verify (right code)": timed(lambda: (n := next(cursor), registry.verify(n, token[n], "web:bench")), 300),
        "agency page (status filter)": timed(
            lambda: registry.list_for_agency("DLT", status="in_progress", limit=50), 50),
        "agency late page": timed(lambda: registry.list_for_agency("DLT", late=True, limit=50), 3),
    }
    engine.dispose()
    return results


def chat_lookups(count: int, turns: int) -> list[float]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = dataclasses.replace(private_settings(Path(tmp)), rate_limit_identity=1_000_000)
        engine = make_engine(settings.database)
        migrate(engine)
        numbers = seed(engine, settings.verification_secret, count)
        engine.dispose()
        with open(Path(tmp) / "stack.log", "w") as log, Stack(settings, output=log):
            with httpx.Client(base_url=settings.gateway_url, timeout=60) as citizen:
                number = numbers[7]
                citizen.post("/api/chat", json={"message": f"สถานะ {number}"})
                citizen.post("/api/chat", json={"message": "1234"})  # links this chat
                timings = []
                for _ in range(turns):
                    started = time.perf_counter()
                    reply = citizen.post("/api/chat", json={"message": f"สถานะ {number}"})
                    timings.append((time.perf_counter() - started) * 1000)
                    assert reply.json()["messages"][0]["text"].startswith("🔎 สถานะคำขอเลขที่"), reply.text
                return timings


def summary(ms: list[float]) -> str:
    ordered = sorted(ms)
    p = lambda q: ordered[min(len(ordered) - 1, int(len(ordered) * q))]  # noqa: E731
    return f"{statistics.median(ordered):.2f} | {p(0.95):.2f} | {len(ordered)}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    parser.add_argument("--chat-turns", type=int, default=100)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "status")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    raw: dict[str, dict[str, list[float]]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        print("SQLite", flush=True)
        raw["sqlite"] = registry_queries(f"sqlite:///{tmp}/bench.db", args.requests)
    base = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    schema = f"bench_{secrets.token_hex(4)}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    try:
        print("PostgreSQL", flush=True)
        url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
        raw["postgresql"] = registry_queries(url.render_as_string(hide_password=False), args.requests)
    finally:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()
    print("web chat", flush=True)
    raw["web chat"] = {"status lookup, linked chat": chat_lookups(args.requests, args.chat_turns)}
    lines = [f"Registry with {args.requests:,} requests (five agencies).", "",
             "| database | query | p50 ms | p95 ms | runs |", "|---|---|---:|---:|---:|"]
    for db, queries in raw.items():
        lines += [f"| {db} | {name} | {summary(ms)} |" for name, ms in queries.items()]
    table = "\n".join(lines) + "\n"
    (args.out / "bench.md").write_text(table, encoding="utf-8")
    (args.out / "bench.json").write_text(json.dumps(raw), encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
