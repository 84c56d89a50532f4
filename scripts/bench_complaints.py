"""Complaint benchmark (`make bench-complaints`; app environment): filing, and delivery to agencies.

On SQLite and on PostgreSQL (TEST_DATABASE_URL, a scratch schema dropped afterwards):

1. filing: `file_complaint` (what the chat form, Open311 and the portal call: route, number,
   deadlines on the SLA clock, the reporter's push and the agency's webhook event, one
   transaction) N times one after another, then from 8 threads at once: latency p50/p95/p99
   and complaints per second;
2. delivery: with the receiving agency subscribed by a local HTTP receiver (aiohttp, checking
   every signature), the `WebhookSender` the gateway runs drains a backlog of N events (events
   per second), then delivers complaints filed 50 a second (time from filing to receipt
   p50/p95/p99); events lost or received twice (by Idempotency-Key) must both be 0.

Then, unless --no-chat, through the real stack's web chat: a citizen files a complaint in four
messages (what happened, no place, anonymous, confirm); the time of the confirming turn, which
stores the complaint before answering, and of the whole dialogue.

Prints a table, writes reports/complaints/bench.md and the raw timings to bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import re
import secrets
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable, Optional

import aiohttp
from aiohttp import web
from sqlalchemy.engine import make_url

from bot.catalog import load_catalog
from bot.complaints import Desk, WebhookSender, file_complaint, subscribe
from bot.complaints.webhooks import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify_signature
from bot.db import make_engine, migrate
from bot.runtime.stack import Stack, private_settings
from bot.settings import PROJECT_ROOT

CATALOG = load_catalog(PROJECT_ROOT / "sla_catalog")
SECRET = "bench-" + secrets.token_hex(16)
DESCRIPTION = "เจ้าหน้าที่พูดจาไม่สุภาพ และให้รอคิวนานกว่า 3 ชั่วโมง ทั้งที่จองคิวออนไลน์ไว้แล้ว"
LATENCY_EVENTS = 100
NUMBER = re.compile(r"CMP-\d{4}-\d{6}")
# The filing dialogue: typed messages, and button taps ("button:" + what its payload names).
CHAT = ("อยากร้องเรียนเจ้าหน้าที่ขนส่ง", DESCRIPTION, "button:skip", "button:anonymous", "button:confirm")


def _quantiles(ms: list[float]) -> str:
    ordered = sorted(ms)

    def q(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(len(ordered) * p))]

    return f"{q(0.5):.1f} / {q(0.95):.1f} / {q(0.99):.1f}"


def _postgres() -> Optional[tuple[str, Callable[[], None]]]:
    base = os.environ.get("TEST_DATABASE_URL")
    if not base:
        return None
    schema = f"bench_{secrets.token_hex(4)}"
    admin = make_engine(base)
    with admin.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')

    def drop() -> None:
        with admin.begin() as connection:
            connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
        admin.dispose()

    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False), drop


def _desk(url: str) -> Desk:
    engine = make_engine(url, pool_size=10) if url.startswith("postgresql") else make_engine(url)
    migrate(engine)
    return Desk(engine, SECRET, lambda: CATALOG)


def _file(desk: Desk, key: str) -> tuple[str, float]:
    """File one complaint: its number and when it was stored (perf_counter)."""
    complaint = file_complaint(desk, reporter=f"line:U{key}", idempotency_key=key, description=DESCRIPTION,
                               service_id="driving_licence_renewal")
    return complaint.tracking_number, time.perf_counter()


def _timed_file(desk: Desk, key: str) -> float:
    started = time.perf_counter()
    _, stored = _file(desk, key)
    return (stored - started) * 1000


def bench_filing(desk: Desk, count: int) -> dict:
    serial = [_timed_file(desk, f"s{i}") for i in range(count)]
    started = time.perf_counter()
    with ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda i: _timed_file(desk, f"p{i}"), range(count)))
    seconds = time.perf_counter() - started
    return {"serial_ms": serial, "parallel_ms": parallel, "parallel_seconds": seconds}


async def bench_delivery(desk: Desk, count: int) -> dict:
    received: dict[str, float] = {}  # Idempotency-Key -> when
    arrived: dict[str, float] = {}  # tracking number -> when its event arrived
    duplicates = 0
    bad_signatures = 0
    secret_box: dict[str, str] = {}

    async def receive(request: web.Request) -> web.Response:
        nonlocal duplicates, bad_signatures
        body = await request.text()
        if not verify_signature(secret_box["secret"], request.headers.get(SIGNATURE_HEADER, ""), body):
            bad_signatures += 1
            return web.Response(status=401)
        key = request.headers[IDEMPOTENCY_HEADER]
        if key in received:
            duplicates += 1
        else:
            received[key] = time.perf_counter()
            number = NUMBER.search(body)
            if number:
                arrived.setdefault(number.group(0), received[key])
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", receive)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    _, secret_box["secret"] = subscribe(desk, "DLT", f"http://127.0.0.1:{port}/hook", actor="bench")
    sender = WebhookSender(desk, poll=0.05)
    filed_at: dict[str, float] = {}
    try:
        # Throughput: a backlog of `count` events (filed while the sender was stopped) drained.
        for i in range(count):
            _file(desk, f"w{i}")
        await sender.start()
        started = time.perf_counter()
        while len(received) < count and time.perf_counter() - started < 120:
            await asyncio.sleep(0.01)
        seconds = time.perf_counter() - started
        # Latency: complaints filed one by one, 50 a second, while the sender runs.
        for i in range(LATENCY_EVENTS):
            number, stored = await asyncio.to_thread(_file, desk, f"l{i}")
            filed_at[number] = stored
            await asyncio.sleep(0.02)
        deadline = time.perf_counter() + 60
        while len(received) < count + LATENCY_EVENTS and time.perf_counter() < deadline:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.5)  # anything delivered twice arrives now
    finally:
        await sender.stop()
        await runner.cleanup()
    return {
        "events": count + LATENCY_EVENTS, "received": len(received), "duplicates": duplicates,
        "bad_signatures": bad_signatures, "backlog": count, "drain_seconds": seconds,
        "latency_ms": [(arrived[number] - stored) * 1000 for number, stored in filed_at.items() if number in arrived],
    }


async def bench_chat(base_url: str, conversations: int) -> dict:
    confirm_ms, dialogue_ms = [], []
    for _ in range(conversations):
        jar = aiohttp.CookieJar(unsafe=True)
        async with aiohttp.ClientSession(base_url, cookie_jar=jar, timeout=aiohttp.ClientTimeout(total=60)) as client:
            began = time.perf_counter()
            payload: dict = {"messages": []}
            for step in CHAT:
                text = _tap(payload, step.removeprefix("button:")) if step.startswith("button:") else step
                started = time.perf_counter()
                async with client.post("/api/chat", json={"message": text}) as response:
                    payload = await response.json(content_type=None)
                    response.raise_for_status()
            confirm_ms.append((time.perf_counter() - started) * 1000)
            dialogue_ms.append((time.perf_counter() - began) * 1000)
            answer = " ".join(m.get("text") or "" for m in payload["messages"])
            if "CMP-" not in answer:
                raise RuntimeError(f"the dialogue did not file a complaint; the last answer was: {answer[:300]}")
    return {"confirm_ms": confirm_ms, "dialogue_ms": dialogue_ms}


def _tap(payload: dict, choice: str) -> str:
    """The payload of the offered button whose payload names `choice` (what a tap sends)."""
    for message in payload["messages"]:
        for button in message.get("buttons") or []:
            if f'"{choice}"' in button["payload"]:
                return button["payload"]
    raise RuntimeError(f"no {choice!r} button offered; the answer was: {json.dumps(payload, ensure_ascii=False)[:300]}")


def _table(results: dict) -> str:
    lines = [
        "| database | filing p50 / p95 / p99 ms (one at a time) | complaints/s (8 threads) | "
        "webhook events/s (backlog) | filing → receipt p50 / p95 / p99 ms | lost | twice |",
        "|---|---|---:|---:|---|---:|---:|",
    ]
    for name, run in results["databases"].items():
        filing, delivery = run["filing"], run["delivery"]
        lines.append(
            f"| {name} | {_quantiles(filing['serial_ms'])} | "
            f"{len(filing['parallel_ms']) / filing['parallel_seconds']:.0f} | "
            f"{delivery['backlog'] / delivery['drain_seconds']:.0f} | {_quantiles(delivery['latency_ms'])} | "
            f"{delivery['events'] - delivery['received']} | {delivery['duplicates']} |"
        )
    chat = results.get("chat")
    if chat:
        lines += [
            "",
            f"Through the web chat ({len(chat['confirm_ms'])} citizens, one after another): the confirming turn "
            f"(stores the complaint, then answers with its number) p50 / p95 / p99 {_quantiles(chat['confirm_ms'])} "
            f"ms; the whole {len(CHAT)}-message dialogue p50 {statistics.median(chat['dialogue_ms']):.0f} ms.",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--complaints", type=int, default=500)
    parser.add_argument("--events", type=int, default=500)
    parser.add_argument("--chats", type=int, default=30)
    parser.add_argument("--no-chat", action="store_true")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "complaints")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    results: dict = {"databases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        databases = [("sqlite", f"sqlite:///{Path(tmp) / 'bench.db'}", None)]
        postgres = _postgres()
        if postgres is not None:
            databases.append(("postgresql", postgres[0], postgres[1]))
        for name, url, drop in databases:
            try:
                desk = _desk(url)
                print(f"{name}: filing {args.complaints} complaints ...", flush=True)
                filing = bench_filing(desk, args.complaints)
                print(f"{name}: delivering {args.events} webhook events ...", flush=True)
                delivery = asyncio.run(bench_delivery(desk, args.events))
                results["databases"][name] = {"filing": filing, "delivery": delivery}
                desk.engine.dispose()
            finally:
                if drop is not None:
                    drop()
        if not args.no_chat:
            settings = dataclasses.replace(private_settings(Path(tmp) / "stack"), rate_limit_identity=1_000_000)
            print(f"web chat: {args.chats} citizens file a complaint ...", flush=True)
            with (args.out / "stack.log").open("w") as log, Stack(settings, output=log):
                results["chat"] = asyncio.run(bench_chat(settings.gateway_url, args.chats))
    (args.out / "bench.json").write_text(json.dumps(results), encoding="utf-8")
    table = _table(results)
    (args.out / "bench.md").write_text(table, encoding="utf-8")
    print()
    print(table)
    print(f"raw timings: {args.out / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
