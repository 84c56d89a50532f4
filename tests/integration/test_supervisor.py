"""The running stack: a process that dies is restarted while the others keep serving, and no
secret is ever on a command line (which every local user can read)."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx

from bot.gateway.conversation import UNAVAILABLE
from bot.runtime.stack import Stack

RESTART_TIMEOUT_SECONDS = 60.0
PATCHES_LINE = (
    "installed Rasa patches: "
    "compiled_action_validator, sqlite_tracker_store, kept_endpoint_sessions, cached_event_types, "
    "sequential_graph_runs, reused_tracker_states, narrowed_rule_matching, past_messages_withheld, "
    "frozen_loaded_model"
)


def _status(client: httpx.Client, url: str) -> int | None:
    """The HTTP status `url` answers with, or None when nothing answers."""
    try:
        return client.get(url).status_code
    except httpx.HTTPError:
        return None


def _until_ok(client: httpx.Client, url: str, deadline: float, what: str) -> None:
    while _status(client, url) != 200:
        assert time.monotonic() < deadline, f"{what} in time"
        time.sleep(0.2)


def test_a_killed_action_server_is_restarted_while_rasa_and_the_gateway_keep_serving(
    stack: Stack, stack_log: Path
):
    s = stack.settings
    before = stack.pids()
    assert all(before.values()), before
    os.killpg(before["actions"], signal.SIGKILL)

    with httpx.Client(timeout=5.0) as client:
        # While the action server is down, the other two still answer: the citizen gets a
        # short apology, and the gateway's health says which part is down.
        chat = client.post(f"{s.gateway_url}/api/chat", json={"message": "ต่อภาษีรถใช้เอกสารอะไร"})
        assert chat.status_code == 503 and chat.json()["detail"] == UNAVAILABLE
        health = client.get(f"{s.gateway_url}/healthz")
        assert health.status_code == 503
        assert (health.json()["status"], health.json()["parts"]) == ("degraded", {"rasa": "ok", "actions": "down"})
        assert _status(client, f"{s.rasa_url}/status?token={s.rasa_token}") == 200
        deadline = time.monotonic() + RESTART_TIMEOUT_SECONDS
        while stack.pids()["actions"] in (None, before["actions"]):
            assert time.monotonic() < deadline, "the action server was not restarted in time"
            time.sleep(0.2)
        _until_ok(client, f"{s.actions_url}/health", deadline, "the restarted action server was not healthy")
        _until_ok(client, f"{s.gateway_url}/healthz", deadline, "the gateway did not see it back")
        after = stack.pids()
        assert (after["rasa"], after["gateway"]) == (before["rasa"], before["gateway"])

    log = stack_log.read_text(encoding="utf-8")
    assert "the actions process was killed by SIGKILL; restarting it in 1 s" in log


def test_no_command_line_holds_a_secret_and_rasa_still_requires_its_token(stack: Stack):
    s = stack.settings
    secrets = [s.rasa_token.encode(), s.web_session_secret.encode(), s.verification_secret.encode()]
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes()
        except OSError:  # gone, or not ours to read
            continue
        assert not any(secret in cmdline for secret in secrets), f"a secret is on the command line of PID {proc.name}"

    rasa_cmdline = Path(f"/proc/{stack.pids()['rasa']}/cmdline").read_bytes().split(b"\0")
    assert b"bot.runtime.rasa_server" in rasa_cmdline and b"--auth-token" not in rasa_cmdline
    with httpx.Client(timeout=5.0) as client:
        assert client.get(f"{s.rasa_url}/status").status_code == 401
        assert client.get(f"{s.rasa_url}/status", params={"token": "wrong"}).status_code == 401
        assert client.get(f"{s.rasa_url}/status", params={"token": s.rasa_token}).status_code == 200


def test_conversations_survive_a_rasa_restart_and_the_validator_patch_is_active(stack: Stack, stack_log: Path):
    s = stack.settings
    assert PATCHES_LINE in stack_log.read_text(encoding="utf-8")
    with httpx.Client(base_url=s.gateway_url, timeout=60) as citizen:
        assert citizen.post("/api/chat", json={"message": "ทำพาสปอร์ตใช้เวลากี่วัน"}).status_code == 200
        patched_starts = stack_log.read_text(encoding="utf-8").count(PATCHES_LINE)  # other tests restart Rasa too
        before = stack.pids()
        os.killpg(before["rasa"], signal.SIGKILL)
        deadline = time.monotonic() + 180
        while stack.pids()["rasa"] in (None, before["rasa"]):
            assert time.monotonic() < deadline, "Rasa was not restarted in time"
            time.sleep(0.5)
        _until_ok(citizen, f"{s.rasa_url}/status?token={s.rasa_token}", deadline, "Rasa did not come back")
        reply = citizen.post("/api/chat", json={"message": "แล้วค่าธรรมเนียมล่ะ"})
        assert reply.status_code == 200
        assert reply.json()["messages"][0]["text"].startswith("💰 ค่าธรรมเนียม: การขอหนังสือเดินทาง")
    patched_now = stack_log.read_text(encoding="utf-8").count(PATCHES_LINE)
    assert patched_now == patched_starts + 1, "the restarted Rasa is patched too"


def test_rasa_and_the_action_server_keep_an_idle_connection_longer_than_clients_reuse_one(stack):
    """Rasa's client reuses an idle connection to the action server for up to 15 s, the gateway's
    pool for 30 s; the action server's Sanic closed them after 5 s, and a custom action that went
    out on a connection as it closed failed. After 6 s idle a connection still answers (Rasa sets
    120 s itself)."""
    settings = stack.settings
    for url, path in ((settings.actions_url, "/health"), (settings.rasa_url, "/")):
        server = urlsplit(url)
        request = f"GET {path} HTTP/1.1\r\nHost: {server.netloc}\r\n\r\n".encode()
        with socket.create_connection((server.hostname, server.port), timeout=10) as connection:
            for pause in (0, 6):
                time.sleep(pause)
                connection.sendall(request)
                assert connection.recv(65536).startswith(b"HTTP/1.1 200"), f"{url}: no answer after {pause} s idle"
