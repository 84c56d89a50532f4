"""Channel benchmark (`make bench-channels`; app environment): LINE webhooks against Rasa's REST channel.

Starts the real stack (Rasa server, action server, gateway) with LINE enabled and pointed at the
fake LINE API (tests/fakes/line_api.py, in this process), then, at each concurrency level:

- LINE: each simulated citizen (a LINE user) opens a conversation untimed ("สวัสดีครับ") and
  then sends timed, correctly signed webhooks, one at a time: the next once the answer reached
  the fake LINE API. Measured per message: the webhook's acknowledgement (the gateway's 200),
  the end-to-end time from sending the webhook to the reply call arriving at LINE, messages per
  second, and lost or duplicated answers (every answer here is one LINE message, so each user
  must get exactly one successful reply or push call per message; both must be 0);
- the same messages, by the same number of clients in the same pattern, straight to Rasa's
  REST channel; and the ratio between the two. The paths take turns (`--rounds`), so a busy
  spell on the machine falls on both alike.

If the stack's gateway does not serve `/webhooks/line` (the channel not wired yet), the LINE
route runs in its own process from `tests/fakes/line_gateway.py` (the same adapter on
in-memory stand-ins of the inbox and outbox); the report says which.

Prints a table, writes it to reports/channels/bench.md and the raw timings to bench.json; the
exit code is 1 if any message was lost or duplicated.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from pathlib import Path

import httpx

PROJECT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(PROJECT_ROOT))  # tests.fakes

from bot.runtime.stack import Stack, free_port, private_settings  # noqa: E402
from tests.fakes.line_api import (  # noqa: E402
    ACCESS_TOKEN,
    CHANNEL_SECRET,
    Call,
    FakeLineApi,
    signed_headers,
    text_event,
    user_id,
    webhook_body,
)

TEXT = "ต่อภาษีรถยนต์ต้องใช้เอกสารอะไรบ้าง"  # an answer rendered by the action server
OPENING = "สวัสดีครับ"
WEBHOOK = "/webhooks/line"
ANSWER_TIMEOUT_SECONDS = 60.0


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))] if ordered else float("nan")


class LineClients:
    """Signed webhooks in; answers seen at the fake LINE API, matched by reply token or user."""

    def __init__(self, fake: FakeLineApi, gateway_url: str) -> None:
        self.fake = fake
        self.url = gateway_url + WEBHOOK
        self.loop = asyncio.get_running_loop()
        self.by_token: dict[str, asyncio.Future] = {}
        self.by_user: dict[str, asyncio.Future] = {}
        self.token_user: dict[str, str] = {}
        fake.listener = self._seen

    def _seen(self, call: Call) -> None:
        if call.status != 200 or not isinstance(call.json, dict):
            return
        if call.path == "/v2/bot/message/reply":
            waiter = self.by_token.get(call.json.get("replyToken", ""))
        elif call.path == "/v2/bot/message/push":
            waiter = self.by_user.get(call.json.get("to", ""))
        else:
            return
        if waiter is not None:
            self.loop.call_soon_threadsafe(lambda: waiter.done() or waiter.set_result(call.at))

    async def send(self, client: httpx.AsyncClient, user: str, text: str) -> tuple[float, float] | None:
        """(acknowledgement ms, end-to-end ms) of one message, or None if its answer never came."""
        token = self.fake.issue_reply_token(user)
        self.token_user[token] = user
        answered = self.loop.create_future()
        self.by_token[token] = self.by_user[user] = answered
        body = webhook_body([text_event(user, text, token)])
        started = time.perf_counter()
        response = await client.post(self.url, content=body, headers=signed_headers(body))
        acknowledged = time.perf_counter()
        if response.status_code != 200:
            raise RuntimeError(f"the gateway answered {response.status_code} to a signed webhook: {response.text}")
        try:
            arrived = await asyncio.wait_for(answered, ANSWER_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            return None
        finally:
            self.by_token.pop(token, None)
        return (acknowledged - started) * 1000, (arrived - started) * 1000

    def deliveries(self, users: list[str]) -> Counter:
        """Successful reply and push calls per user."""
        counts: Counter = Counter()
        wanted = set(users)
        for call in self.fake.calls:
            if call.status != 200 or not isinstance(call.json, dict):
                continue
            if call.path == "/v2/bot/message/reply":
                user = self.token_user.get(call.json.get("replyToken", ""))
            elif call.path == "/v2/bot/message/push":
                user = call.json.get("to")
            else:
                continue
            if user in wanted:
                counts[user] += 1
        return counts


async def _line_run(lines: LineClients, clients: int, per_client: int) -> dict:
    ack: list[float] = []
    e2e: list[float] = []
    users = [user_id() for _ in range(clients)]
    ready = asyncio.Event()
    opened = missing = 0

    async def citizen(user: str) -> None:
        nonlocal opened, missing
        async with httpx.AsyncClient(timeout=30) as client:
            if await lines.send(client, user, OPENING) is None:
                missing += 1
            opened += 1
            await ready.wait()
            for _ in range(per_client):
                result = await lines.send(client, user, TEXT)
                if result is None:
                    missing += 1
                    continue
                ack.append(result[0])
                e2e.append(result[1])

    tasks = [asyncio.create_task(citizen(user)) for user in users]
    while opened < clients:  # every conversation opened (untimed), then the timed part
        await asyncio.sleep(0.01)
    started = time.perf_counter()
    ready.set()
    await asyncio.gather(*tasks)
    seconds = time.perf_counter() - started
    await asyncio.sleep(2.0)  # anything late or sent twice would arrive now
    counts = lines.deliveries(users)
    expected = per_client + 1
    lost = sum(max(0, expected - counts[u]) for u in users)
    duplicated = sum(max(0, counts[u] - expected) for u in users)
    return {"ack_ms": ack, "e2e_ms": e2e, "seconds": seconds, "lost": max(lost, missing), "duplicated": duplicated}


async def _rasa_run(rasa_url: str, clients: int, per_client: int) -> dict:
    timings: list[float] = []
    ready = asyncio.Event()
    opened = 0

    async def citizen() -> None:
        nonlocal opened
        sender = f"bench-{uuid.uuid4().hex}"
        async with httpx.AsyncClient(base_url=rasa_url, timeout=60) as client:
            opening = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": OPENING})
            opening.raise_for_status()
            opened += 1
            await ready.wait()
            for _ in range(per_client):
                started = time.perf_counter()
                response = await client.post("/webhooks/rest/webhook", json={"sender": sender, "message": TEXT})
                response.raise_for_status()
                if not response.json():
                    raise RuntimeError("Rasa answered nothing")
                timings.append((time.perf_counter() - started) * 1000)

    tasks = [asyncio.create_task(citizen()) for _ in range(clients)]
    while opened < clients:
        await asyncio.sleep(0.01)
    started = time.perf_counter()
    ready.set()
    await asyncio.gather(*tasks)
    return {"ms": timings, "seconds": time.perf_counter() - started}


async def _bench(
    fake: FakeLineApi, gateway_url: str, rasa_url: str, levels: list[int], messages: int, rounds: int
) -> dict:
    lines = LineClients(fake, gateway_url)
    await _line_run(lines, 2, 5)  # warm both paths
    await _rasa_run(rasa_url, 2, 5)
    runs = []
    for clients in levels:
        per_client = max(1, messages // clients // rounds)
        # The two paths take turns, so a busy spell on the machine falls on both alike.
        line_result: dict = {"ack_ms": [], "e2e_ms": [], "seconds": 0.0, "lost": 0, "duplicated": 0}
        rasa_result: dict = {"ms": [], "seconds": 0.0}
        for _ in range(rounds):
            one = await _line_run(lines, clients, per_client)
            for key in line_result:
                line_result[key] += one[key]
            other = await _rasa_run(rasa_url, clients, per_client)
            rasa_result["ms"] += other["ms"]
            rasa_result["seconds"] += other["seconds"]
        runs.append({"clients": clients, "per_client": per_client * rounds, "line": line_result, "rasa": rasa_result})
        e2e, rasa = line_result["e2e_ms"], rasa_result["ms"]
        print(
            f"  {clients:>3} clients: LINE ack p50 {_quantile(line_result['ack_ms'], 0.5):6.1f} ms, end-to-end p50 "
            f"{_quantile(e2e, 0.5):6.1f} ms, {len(e2e) / line_result['seconds']:6.1f} msg/s, lost "
            f"{line_result['lost']}, duplicated {line_result['duplicated']} | Rasa REST p50 "
            f"{_quantile(rasa, 0.5):6.1f} ms, {len(rasa) / rasa_result['seconds']:6.1f} msg/s",
            flush=True,
        )
    return {"runs": runs, "loading_animations": len(fake.calls_to("/v2/bot/chat/loading/start"))}


def _table(results: dict, route: str) -> str:
    out = [
        f"LINE route: {route}. Text: \"{TEXT}\" (custom action). Times in ms; e2e = webhook sent → reply call at LINE.",
        "",
        "| clients | msgs | LINE ack p50 / p95 / p99 | LINE e2e p50 / p95 / p99 | LINE msg/s | lost | dup "
        "| Rasa REST p50 / p95 / p99 | Rasa msg/s | e2e/Rasa p50 | e2e/Rasa p95 | msg/s LINE/Rasa |",
        "|---:|---:|---|---|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for run in results["runs"]:
        line, rasa = run["line"], run["rasa"]
        ack, e2e, ms = line["ack_ms"], line["e2e_ms"], rasa["ms"]
        line_rate, rasa_rate = len(e2e) / line["seconds"], len(ms) / rasa["seconds"]

        def q3(values: list[float]) -> str:
            return " / ".join(f"{_quantile(values, q):.1f}" for q in (0.5, 0.95, 0.99))

        out.append(
            f"| {run['clients']} | {len(e2e)} | {q3(ack)} | {q3(e2e)} | {line_rate:.1f} | {line['lost']} | "
            f"{line['duplicated']} | {q3(ms)} | {rasa_rate:.1f} | "
            f"{_quantile(e2e, 0.5) / _quantile(ms, 0.5):.2f} | {_quantile(e2e, 0.95) / _quantile(ms, 0.95):.2f} | "
            f"{line_rate / rasa_rate:.2f} |"
        )
    out += ["", f"Loading animations shown (answers slower than a moment): {results['loading_animations']}."]
    return "\n".join(out) + "\n"


def _serve_line_gateway(settings, log) -> tuple[subprocess.Popen, str]:
    """The LINE route on in-memory stand-ins, in its own process (the gateway is not wired yet)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "--factory", "tests.fakes.line_gateway:create_app", "--host", "127.0.0.1",
         "--port", str(port), "--ws", "none", "--no-access-log", "--log-level", "warning"],
        cwd=PROJECT_ROOT,
        env={**os.environ, **settings.to_env()},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.post(url + WEBHOOK, content=b"{}").status_code == 400:
                return process, url
        except httpx.HTTPError:
            pass
        if process.poll() is not None:
            break
        time.sleep(0.2)
    process.terminate()
    raise RuntimeError("the LINE test gateway did not start; see the stack log")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--levels", type=int, nargs="+", default=[1, 20], help="concurrent LINE users")
    parser.add_argument("--messages", type=int, default=300, help="timed messages per level and path")
    parser.add_argument("--rounds", type=int, default=3, help="turns the two paths take at each level")
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "channels")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp, FakeLineApi() as fake:
        settings = dataclasses.replace(
            private_settings(Path(tmp)),
            rate_limit_identity=1_000_000,
            line_channel_secret=CHANNEL_SECRET,
            line_channel_access_token=ACCESS_TOKEN,
            line_api_base_url=fake.url,
        )
        with (args.out / "stack.log").open("w") as log, Stack(settings, output=log):
            harness = None
            gateway_url = settings.gateway_url
            route = "the gateway's own (durable inbox, dispatcher, outbox)"
            if httpx.post(gateway_url + WEBHOOK, content=b"{}").status_code == 404:
                harness, gateway_url = _serve_line_gateway(settings, log)
                route = "tests/fakes/line_gateway.py in its own process (in-memory inbox and outbox; gateway not wired)"
            print(f"LINE route: {route}", flush=True)
            try:
                results = asyncio.run(
                    _bench(fake, gateway_url, settings.rasa_url, args.levels, args.messages, args.rounds)
                )
            finally:
                if harness is not None:
                    harness.terminate()
                    harness.wait(timeout=15)
    results["route"] = route
    (args.out / "bench.json").write_text(json.dumps(results), encoding="utf-8")
    table = _table(results, route)
    (args.out / "bench.md").write_text(table, encoding="utf-8")
    print()
    print(table)
    print(f"raw timings: {args.out / 'bench.json'}")
    failed = sum(run["line"]["lost"] + run["line"]["duplicated"] for run in results["runs"])
    if failed:
        print(f"error: {failed} LINE messages lost or duplicated", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
