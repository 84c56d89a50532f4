"""Chat benchmark (`make bench-chat`; app environment): what one turn costs, and whether it grows.

Starts the real stack (Rasa server, action server, gateway) on free ports and measures, in one
run and on the same processes:

- small-talk turns (a fixed response, no custom action) and custom-action turns (an answer
  rendered from the catalog by the action server), each at 1, 10, 20 and 50 concurrent clients,
  both through the gateway's web chat API and straight to Rasa's REST channel; this machine's
  speed drifts by 20% and more within minutes, so the two paths take turns: turn by turn at one
  client, in alternating rounds under load. Each simulated citizen opens a conversation
  (untimed) and then sends ten timed turns;
- at one client, two minimal fronts beside those two (scripts/bare_hop.py): a byte relay in
  front of Rasa (a second process and the extra trips through the kernel, no HTTP or JSON
  work) and a bare Python hop (the least a web-chat front can do), so each run shows what
  those cost a turn on the machine at that hour, next to what the gateway costs;
- one conversation of 500 custom-action turns through the gateway: its first turns against
  its last;
- the CPU time each process spends per message, from one client on each path in turn (CPU
  time drifts with the machine too, but less than latency: it leaves out waiting for a core).

Messages per second count timed turns only (over a time that includes the untimed greetings,
one message in eleven). The simulated citizens use aiohttp, the lightest client here, because
they share the two cores with the stack they measure. Prints a table of p50/p95/p99 latency and
messages per second, writes it to reports/chat/bench.md, and keeps every raw timing in
reports/chat/bench.json.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import zlib
from pathlib import Path
from typing import Iterator

import aiohttp

from bot.runtime.stack import Stack, free_port, private_settings
from bot.settings import PROJECT_ROOT

SMALL_TALK = "ขอบคุณครับ"
CUSTOM_ACTION = "ต่อภาษีรถยนต์ต้องใช้เอกสารอะไรบ้าง"
LEVELS = (1, 10, 20, 50)
LONG_CONVERSATION_TURNS = 500
WINDOW = 20  # turns averaged at each end of the long conversation
CONVERSATION_TURNS = 10  # timed turns per simulated citizen in the load runs
ROUNDS = 4  # each (kind, clients) measurement alternates the two paths over this many rounds
CPU_MESSAGES = 300  # timed turns per (kind, path) for the CPU accounting


def _client() -> aiohttp.ClientSession:
    # unsafe=True: keep the gateway's session cookie although the host is an IP address.
    return aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=60))


REST_PATHS = ("rasa", "relay")  # paths that speak Rasa's REST channel (the relay passes it through)


def _url(bases: list[str], path: str, sender: str) -> str:
    """The chat API of the gateway (or of the bare hop), or the REST channel of the Rasa server
    the gateway would give this conversation (the same choice as bot.gateway.conversation)."""
    if path not in REST_PATHS:
        return f"{bases[0]}/api/chat"
    return f"{bases[zlib.crc32(sender.encode('utf-8')) % len(bases)]}/webhooks/rest/webhook"


async def _turn(client: aiohttp.ClientSession, bases: list[str], path: str, text: str, sender: str | None) -> float:
    sender = sender or uuid.uuid4().hex
    body = {"sender": sender, "message": text} if path in REST_PATHS else {"message": text}
    url = _url(bases, path, sender)
    started = time.perf_counter()
    async with client.post(url, json=body) as response:
        payload = await response.json(content_type=None)
        elapsed = (time.perf_counter() - started) * 1000
        response.raise_for_status()
    messages = payload if path in REST_PATHS else payload["messages"]
    if not messages:
        raise RuntimeError(f"no reply to {text!r} through {path}")
    return elapsed


async def _new_conversation(client: aiohttp.ClientSession, bases: list[str], path: str) -> str:
    """Start a new citizen's conversation (a fresh web session or sender, an untimed greeting,
    which also starts Rasa's session); the sender to go on with."""
    client.cookie_jar.clear()
    sender = uuid.uuid4().hex
    await _turn(client, bases, path, "สวัสดีครับ", sender)
    return sender


async def _load(bases: list[str], path: str, text: str, clients: int, messages: int) -> tuple[list[float], float]:
    """`messages` timed turns spread over `clients` concurrent clients.

    Each client talks as a new citizen every CONVERSATION_TURNS turns; the first message of a
    conversation (which also starts Rasa's session) is sent untimed, so small talk measures a
    turn that runs no custom action, and no conversation grows long.
    """
    timings: list[float] = []
    per_client = max(1, messages // clients)

    async def client_loop() -> None:
        async with _client() as client:
            sender = ""
            for turn in range(per_client):
                if turn % CONVERSATION_TURNS == 0:
                    sender = await _new_conversation(client, bases, path)
                timings.append(await _turn(client, bases, path, text, sender))

    started = time.perf_counter()
    await asyncio.gather(*(client_loop() for _ in range(clients)))
    return timings, time.perf_counter() - started


async def _paired(bases: dict[str, list[str]], text: str, messages: int) -> dict[str, list[float]]:
    """One client on each path, taking turns in an order that rotates every turn. So all paths
    meet the machine in the same state, to the second: at one client the gateway's share of a
    turn is about 10%, and this machine's speed drifts by more than that within a minute.
    Conversations as in `_load`."""
    paths = list(bases)
    timings: dict[str, list[float]] = {path: [] for path in paths}
    clients = {path: _client() for path in paths}
    senders: dict[str, str] = {}
    try:
        for turn in range(messages):
            order = paths[turn % len(paths):] + paths[:turn % len(paths)]
            for path in order if turn % 2 == 0 else order[::-1]:
                if turn % CONVERSATION_TURNS == 0:
                    senders[path] = await _new_conversation(clients[path], bases[path], path)
                timings[path].append(await _turn(clients[path], bases[path], path, text, senders[path]))
    finally:
        for client in clients.values():
            await client.close()
    return timings


async def _long_conversation(gateway_url: str, turns: int) -> dict[str, list[float]]:
    """One conversation of `turns` custom-action turns through the gateway ("ms"), each followed
    by a turn of a short conversation renewed every CONVERSATION_TURNS turns ("reference_ms"):
    the machine's drift over the run cancels in their ratio."""
    long: list[float] = []
    reference: list[float] = []
    async with _client() as client, _client() as short:
        for turn in range(turns):
            long.append(await _turn(client, [gateway_url], "gateway", CUSTOM_ACTION, None))
            if turn % CONVERSATION_TURNS == 0:
                await _new_conversation(short, [gateway_url], "gateway")
            reference.append(await _turn(short, [gateway_url], "gateway", CUSTOM_ACTION, None))
    return {"ms": long, "reference_ms": reference}


def reference_loop_ms() -> float:
    """Milliseconds for a fixed pure-Python loop: how fast this machine runs Python right now.

    The shared 2-core machines this runs on vary by 20-40% from hour to hour; this figure,
    printed with every run, tells a slower stack from a slower machine."""
    started = time.perf_counter()
    total = 0
    for i in range(2_000_000):
        total += i * i
    return (time.perf_counter() - started) * 1000


def _cpu_seconds(pid: int) -> float:
    """User plus system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _cpu_per_message(bases: dict[str, list[str]], pids: dict[str, int]) -> list[dict]:
    """CPU ms per message of each process, for each kind of turn and path: CPU_MESSAGES turns
    from one client (the untimed greetings, one message in eleven, are counted as messages)."""
    rows = []
    for kind, text in (("small talk", SMALL_TALK), ("custom action", CUSTOM_ACTION)):
        for path in ("rasa", "gateway"):
            before = {name: _cpu_seconds(pid) for name, pid in pids.items()}
            timings, _ = await _load(bases[path], path, text, 1, CPU_MESSAGES)
            sent = len(timings) + math.ceil(len(timings) / CONVERSATION_TURNS)  # and a greeting each
            rows.append({"kind": kind, "path": path, **{
                name: (_cpu_seconds(pid) - before[name]) * 1000 / sent for name, pid in pids.items()
            }})
    return rows


@contextlib.contextmanager
def _bare_hop(rasa_url: str, *mode: str) -> Iterator[str]:
    """scripts/bare_hop.py in front of `rasa_url` (`"--relay"`: the byte relay), on a free port;
    yields its base URL."""
    port = free_port()
    hop = subprocess.Popen([sys.executable, str(Path(__file__).with_name("bare_hop.py")), str(port), rasa_url, *mode],
                           stdout=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if hop.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("scripts/bare_hop.py did not start") from None
                time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        hop.terminate()
        hop.wait(10)


def _quantile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * q))]


async def _bench(settings, pids: dict[str, int], fronts: dict[str, str], messages: int, long_turns: int) -> dict:
    results: dict = {"rasa_workers": settings.rasa_workers, "runs": [], "long_conversation": None,
                     "reference_loop_ms": [reference_loop_ms()]}
    bases = {"rasa": settings.rasa_urls, "gateway": [settings.gateway_url]}
    # the minimal fronts (the byte relay, the bare hop) are measured at one client only
    one_client_bases = {**bases, **{path: [url] for path, url in fronts.items()}}
    async with _client() as client:  # what the first citizen after a start waits
        results["first_turn_ms"] = await _turn(client, bases["gateway"], "gateway", CUSTOM_ACTION, None)
    await _load(bases["gateway"], "gateway", CUSTOM_ACTION, 2, 20)  # warm both paths
    await _load(bases["rasa"], "rasa", SMALL_TALK, 2, 20)
    for kind, text in (("small talk", SMALL_TALK), ("custom action", CUSTOM_ACTION)):
        for clients in LEVELS:
            paths = one_client_bases if clients == 1 else bases
            runs = {path: {"kind": kind, "path": path, "clients": clients, "seconds": 0.0, "ms": []} for path in paths}
            if clients == 1:  # one closed-loop client: its rate is 1 / its mean latency
                for path, timings in (await _paired(one_client_bases, text, messages)).items():
                    runs[path]["ms"], runs[path]["seconds"] = timings, sum(timings) / 1000
            else:  # alternating rounds, so both paths share the machine's drift
                # every client sends whole conversations: with fewer turns each, the untimed
                # greetings (session starts) were a third of the load at 50 clients
                per_round = max(messages // ROUNDS, clients * CONVERSATION_TURNS)
                for round_ in range(ROUNDS):
                    for path in ("rasa", "gateway") if round_ % 2 == 0 else ("gateway", "rasa"):
                        timings, seconds = await _load(bases[path], path, text, clients, per_round)
                        runs[path]["ms"] += timings
                        runs[path]["seconds"] += seconds
            for run in runs.values():
                results["runs"].append(run)
                print(f"  {kind:<13} {run['path']:<7} {clients:>2} clients: p50 {_quantile(run['ms'], 0.5):6.1f} ms, "
                      f"{len(run['ms']) / run['seconds']:6.1f} msg/s", flush=True)
    results["cpu_ms_per_message"] = await _cpu_per_message(bases, pids)
    results["long_conversation"] = await _long_conversation(settings.gateway_url, long_turns)
    results["reference_loop_ms"].append(reference_loop_ms())
    return results


def _table(results: dict) -> str:
    lines = [
        f"Rasa server processes: {results['rasa_workers']}. Machine speed: the reference loop took "
        + " and ".join(f"{ms:.0f}" for ms in results["reference_loop_ms"]) + " ms (start and end of the run; "
        f"smaller is faster). The first turn after the stack started: {results['first_turn_ms']:.0f} ms.",
        "",
        "| turn | path | clients | p50 ms | p95 ms | p99 ms | msg/s |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for run in results["runs"]:
        ms = run["ms"]
        lines.append(
            f"| {run['kind']} | {run['path']} | {run['clients']} | {_quantile(ms, 0.5):.1f} | "
            f"{_quantile(ms, 0.95):.1f} | {_quantile(ms, 0.99):.1f} | {len(ms) / run['seconds']:.1f} |"
        )
    p50 = {(run["kind"], run["path"]): _quantile(run["ms"], 0.5) for run in results["runs"] if run["clients"] == 1}

    def over_rasa(kind: str, path: str) -> str:
        return f"+{p50[kind, path] - p50[kind, 'rasa']:.2f} ms ({p50[kind, path] / p50[kind, 'rasa']:.3f}x)"

    lines += ["", "At one client, p50 over Rasa alone: " + "; ".join(
        f"{kind}: the gateway {over_rasa(kind, 'gateway')}, a bare Python hop {over_rasa(kind, 'hop')}, "
        f"a byte relay {over_rasa(kind, 'relay')}" for kind in ("small talk", "custom action")
    ) + " (the hop and the relay: scripts/bare_hop.py)."]
    long, reference = results["long_conversation"]["ms"], results["long_conversation"]["reference_ms"]
    first, last = statistics.median(long[:WINDOW]), statistics.median(long[-WINDOW:])
    first_ref, last_ref = statistics.median(reference[:WINDOW]), statistics.median(reference[-WINDOW:])
    lines += [
        "",
        f"One conversation, {len(long)} custom-action turns through the gateway: turns 1–{WINDOW} "
        f"median {first:.1f} ms, turns {len(long) - WINDOW + 1}–{len(long)} median {last:.1f} ms "
        f"(ratio {last / first:.2f}); turn 1 {long[0]:.1f} ms, turn {len(long)} {long[-1]:.1f} ms. "
        f"Short conversations' turns taken alongside: {first_ref:.1f} ms at the start, {last_ref:.1f} ms "
        f"at the end; the long conversation's last turns relative to its first, with the machine's drift "
        f"taken out: {(last / last_ref) / (first / first_ref):.2f}.",
    ]
    names = list(results["cpu_ms_per_message"][0])[2:]
    lines += [
        "",
        "CPU ms per message (one client; greetings counted as messages):",
        "",
        "| turn | path | " + " | ".join(names) + " | all |",
        "|---|---|" + "---:|" * (len(names) + 1),
    ]
    for row in results["cpu_ms_per_message"]:
        cells = [f"{row[name]:.2f}" for name in names] + [f"{sum(row[name] for name in names):.2f}"]
        lines.append(f"| {row['kind']} | {row['path']} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=400, help="turns per (kind, path, clients) run")
    parser.add_argument("--long-turns", type=int, default=LONG_CONVERSATION_TURNS)
    parser.add_argument("--out", type=Path, default=PROJECT_ROOT / "reports" / "chat")
    parser.add_argument("--rasa-workers", type=int, default=1, help="Rasa server processes (RASA_WORKERS)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        settings = dataclasses.replace(private_settings(Path(tmp), args.rasa_workers), rate_limit_identity=1_000_000)
        with (args.out / "stack.log").open("w") as log, Stack(settings, output=log) as stack:
            pids = {name: pid for name, pid in stack.pids().items() if pid is not None}
            rasa_url = settings.rasa_urls[0]
            with _bare_hop(rasa_url) as hop_url, _bare_hop(rasa_url, "--relay") as relay_url:
                fronts = {"hop": hop_url, "relay": relay_url}
                results = asyncio.run(_bench(settings, pids, fronts, args.messages, args.long_turns))
    (args.out / "bench.json").write_text(json.dumps(results), encoding="utf-8")
    table = _table(results)
    (args.out / "bench.md").write_text(table, encoding="utf-8")
    print()
    print(table)
    print(f"raw timings: {args.out / 'bench.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
