"""`sla-bot webhooks ...` and `sla-bot outbox failed` on SQLite and PostgreSQL, and end to end: a complaint filed
through the real gateway's Open311 POST reaches a local receiver that checks the signature with the secret the CLI
printed."""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from bot.answers.reply import Reply
from bot.casework.api_keys import ApiKeys
from bot.casework.audit import entries
from bot.casework.request import bangkok_now
from bot.catalog import load_catalog
from bot.cli import main
from bot.complaints import Desk, deliveries, file_complaint
from bot.db import make_engine, transaction
from bot.db.models import OutboundMessageRow, WebhookDeliveryRow
from bot.delivery.outbox import DurableOutbox
from bot.gateway.app import create_app
from bot.settings import PROJECT_ROOT, Settings
from tests.unit.databases import database_url  # noqa: F401

SECRET = "cli-webhooks-test-secret"
CATALOG = load_catalog(PROJECT_ROOT / "sla_catalog")
WHSEC = re.compile(r"whsec_[A-Za-z0-9_-]{20,}")


@pytest.fixture
def env(database_url: str, tmp_path, monkeypatch) -> Iterator[str]:  # noqa: F811
    """The operator's environment: the database and every generated secret set (so no .env is written)."""
    values = {
        "DATABASE_URL": database_url, "DATA_DIR": str(tmp_path), "VERIFICATION_SECRET": SECRET,
        "RASA_TOKEN": "r", "WEB_SESSION_SECRET": "w",
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    yield database_url


def sla_bot(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_add_prints_the_secret_once_list_never_shows_it_revoke_stops_it(env, capsys):
    code, out, _ = sla_bot(capsys, "webhooks", "add", "--agency", "dlt", "https://dlt.example.go.th/hooks/sla")
    assert code == 0 and "Webhook 1 for DLT" in out
    secret = WHSEC.search(out).group(0)
    assert "shown only this once" in out and "X-SLA-Signature" in out
    assert sla_bot(capsys, "webhooks", "add", "--agency", "DCA", "https://dca.example.go.th/in")[0] == 0
    code, out, _ = sla_bot(capsys, "webhooks", "list")
    assert code == 0 and secret not in out and "whsec_" not in out
    lines = out.strip().splitlines()
    assert len(lines) == 2 and "DLT" in lines[0] and "active" in lines[0] and "dca.example.go.th" in lines[1]
    code, out, _ = sla_bot(capsys, "webhooks", "list", "--agency", "DCA")
    assert code == 0 and len(out.strip().splitlines()) == 1 and "DCA" in out
    code, out, _ = sla_bot(capsys, "webhooks", "revoke", "1")
    assert code == 0 and "Revoked webhook 1" in out
    code, out, _ = sla_bot(capsys, "webhooks", "list", "--agency", "DLT")
    assert "revoked" in out and "active" not in out
    engine = make_engine(env)
    try:
        with transaction(engine) as session:
            actions = [e.action for e in entries(session, subject="webhook:1", limit=10)]
        assert set(actions) == {"webhook_subscribe", "webhook_revoke"}
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    "argv, message",
    [
        (("webhooks", "add", "--agency", "NOPE", "https://x.example"), "unknown agency"),
        (("webhooks", "add", "--agency", "CMP", "https://x.example"), "unknown agency"),
        (("webhooks", "add", "--agency", "DLT", "http://dlt.example.go.th/h"), "https"),
        (("webhooks", "add", "--agency", "DLT", "ftp://x"), "URL"),
        (("webhooks", "revoke", "99"), "no webhook subscription"),
        (("webhooks", "resend", "nope"), "no webhook delivery"),
    ],
)
def test_refusals_are_an_error_line_and_exit_1(env, capsys, argv, message):
    code, out, err = sla_bot(capsys, *argv)
    assert code == 1 and message in err and "Traceback" not in err and "whsec_" not in out


def test_dead_letters_are_listed_and_resent(env, capsys):
    assert sla_bot(capsys, "webhooks", "add", "--agency", "DLT", "https://dlt.example.go.th/h")[0] == 0
    engine = make_engine(env)
    try:
        desk = Desk(engine, SECRET, lambda: CATALOG)
        filed = file_complaint(desk, reporter="line:U1", idempotency_key="k", description="รอนาน",
                               service_id="vehicle_tax_renewal")
        assert sla_bot(capsys, "webhooks", "failed")[1].strip() == "No failed webhook deliveries."
        with transaction(engine) as session:  # what the sender does after its last attempt
            session.execute(sa.update(WebhookDeliveryRow).values(state="failed", attempts=12,
                                                                  last_error="gave up after 12 attempts: HTTP 503"))
        key = deliveries(desk, state="failed")[0].key
        assert filed.tracking_number in key
        code, out, _ = sla_bot(capsys, "webhooks", "failed", "--agency", "DLT")
        assert code == 0 and key in out and "complaint.received" in out and "HTTP 503" in out
        assert sla_bot(capsys, "webhooks", "failed", "--agency", "DCA")[1].strip() == "No failed webhook deliveries."
        code, out, _ = sla_bot(capsys, "webhooks", "resend", key)
        assert code == 0 and "Requeued" in out
        assert deliveries(desk)[0].state == "pending" and deliveries(desk)[0].attempts == 0
        code, _, err = sla_bot(capsys, "webhooks", "resend", key)
        assert code == 1 and "not failed" in err
    finally:
        engine.dispose()


def test_outbox_failed_lists_undelivered_chat_pushes_without_whole_identities(env, capsys):
    assert sla_bot(capsys, "outbox", "failed")[1].strip() == "No failed chat pushes."
    engine = make_engine(env)
    identity = "line:U0123456789abcdef0123456789abcdef"
    try:
        outbox = DurableOutbox(engine)
        with transaction(engine) as session:
            outbox.insert(session, identity, [Reply("สวัสดี")], "complaint:CMP-2569-000001:v2:reply", bangkok_now())
            outbox.insert(session, "telegram:42", [Reply("ok")], "sent-one", bangkok_now())
        with transaction(engine) as session:
            session.execute(sa.update(OutboundMessageRow).where(OutboundMessageRow.key != "sent-one")
                            .values(state="failed", last_error="LINE 403: blocked"))
    finally:
        engine.dispose()
    code, out, _ = sla_bot(capsys, "outbox", "failed")
    assert code == 0 and "complaint:CMP-2569-000001:v2:reply" in out and "LINE 403" in out
    assert identity not in out and "sent-one" not in out


class _Receiver(BaseHTTPRequestHandler):
    arrivals: list[tuple[dict[str, str], str]] = []

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"])).decode()
        type(self).arrivals.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def test_a_complaint_filed_over_open311_reaches_the_agencys_receiver_signed(env, capsys, tmp_path):
    _Receiver.arrivals = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/sla"
        code, out, _ = sla_bot(capsys, "webhooks", "add", "--agency", "DLT", url)
        assert code == 0
        secret = WHSEC.search(out).group(0)
        engine = make_engine(env)
        key = ApiKeys(engine, catalog=lambda: CATALOG).create("DLT", "e2e").key
        engine.dispose()
        settings = dataclasses.replace(
            Settings(), database_url=env, data_dir=tmp_path, web_session_secret="w", verification_secret=SECRET
        )
        with TestClient(create_app(settings)) as client:
            filed = client.post("/open311/v2/requests.json", data={
                "api_key": key, "service_code": "vehicle_tax_renewal", "description": "ระบบคิวล่ม",
                "address_string": "ขนส่งนนทบุรี", "phone": "0812345678",
            })
            assert filed.status_code == 201, filed.text
            number = filed.json()[0]["service_request_id"]
            deadline = time.monotonic() + 20
            while not _Receiver.arrivals and time.monotonic() < deadline:
                time.sleep(0.05)
    finally:
        server.shutdown()
        server.server_close()
    assert len(_Receiver.arrivals) == 1, "one event, delivered once"
    headers, body = _Receiver.arrivals[0]
    # What the agency's receiver does: recompute the HMAC over "<t>.<raw body>" with the printed secret.
    parts = dict(item.split("=", 1) for item in headers["x-sla-signature"].split(","))
    assert abs(time.time() - int(parts["t"])) < 300
    expected = hmac.new(secret.encode(), f"{parts['t']}.{body}".encode(), hashlib.sha256).hexdigest()
    assert hmac.compare_digest(expected, parts["v1"])
    event = json.loads(body)
    assert headers["x-sla-event"] == event["event"] == "complaint.received"
    assert headers["idempotency-key"] == event["id"] and number in event["id"]
    assert event["data"]["tracking_number"] == number and event["data"]["contact"] == "phone"
    assert "0812345678" not in body
