"""Durability on the running stack, over LINE: an accepted event survives a gateway restart,
and while Rasa is down the citizen gets one apology and every message is answered, in order,
once it is back."""

from __future__ import annotations

import os
import signal
import time

import httpx

from bot.gateway.channels import line
from bot.gateway.conversation import UNAVAILABLE
from bot.runtime.stack import Stack
from tests.fakes.line_api import FakeLineApi, signed_headers, text_event, user_id, webhook_body

TIMEOUT = 180.0


def post(stack: Stack, events: list[dict]) -> httpx.Response:
    body = webhook_body(events)
    return httpx.post(
        f"{stack.settings.gateway_url}{line.WEBHOOK_PATH}", content=body, headers=signed_headers(body), timeout=10
    )


def wait_until(predicate, what: str, timeout: float = TIMEOUT) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def rasa_ready(stack: Stack) -> bool:
    try:
        s = stack.settings
        return httpx.get(f"{s.rasa_url}/status", params={"token": s.rasa_token}, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_an_event_accepted_before_a_gateway_crash_is_answered_once_after_the_restart(
    stack: Stack, line_api: FakeLineApi
):
    user = user_id()
    pids = stack.pids()
    os.killpg(pids["rasa"], signal.SIGSTOP)  # the answer cannot be made before the gateway dies
    try:
        event = text_event(user, "ทำพาสปอร์ตใช้เวลากี่วัน", line_api.issue_reply_token(user))
        assert post(stack, [event]).status_code == 200
        time.sleep(1.0)
        os.killpg(pids["gateway"], signal.SIGKILL)
    finally:
        os.killpg(pids["rasa"], signal.SIGCONT)
    wait_until(lambda: stack.pids()["gateway"] not in (None, pids["gateway"]), "the gateway was not restarted")
    wait_until(lambda: any(t.startswith("⏱️ ระยะเวลาให้บริการ") for t in line_api.texts(user)),
               "the accepted event was not answered after the restart")
    time.sleep(2)
    answers = [t for t in line_api.texts(user) if t.startswith("⏱️ ระยะเวลาให้บริการ")]
    assert len(answers) == 1, "answered exactly once"


def test_while_rasa_is_down_one_apology_then_every_message_answered_in_order(stack: Stack, line_api: FakeLineApi):
    user = user_id()
    wait_until(lambda: rasa_ready(stack), "Rasa not ready before the test")
    os.killpg(stack.pids()["rasa"], signal.SIGKILL)
    assert post(stack, [text_event(user, "ต่อภาษีรถต้องใช้เอกสารอะไร")]).status_code == 200
    assert post(stack, [text_event(user, "แล้วค่าธรรมเนียมล่ะ")]).status_code == 200
    wait_until(lambda: any(t.startswith("💰 ค่าธรรมเนียม") for t in line_api.texts(user)),
               "the messages were not answered once Rasa was back")
    texts = line_api.texts(user)
    assert sum(t == UNAVAILABLE for t in texts) == 1, texts
    documents = next(i for i, t in enumerate(texts) if t.startswith("📄 เอกสารที่ต้องใช้: การชำระภาษีรถประจำปี"))
    fees = next(i for i, t in enumerate(texts) if t.startswith("💰 ค่าธรรมเนียม: การชำระภาษีรถประจำปี"))
    assert texts.index(UNAVAILABLE) < documents < fees, "in the order they were sent"


def test_a_late_request_linked_on_line_gets_the_7_day_notice_once(stack: Stack, line_api: FakeLineApi):
    import datetime as dt

    from bot.assistant import LiveAssistant
    from bot.casework.registry import Registry
    from bot.db import make_engine

    s = stack.settings
    live = LiveAssistant(s.catalog_dir)
    engine = make_engine(s.database)
    registry = Registry(engine, s.verification_secret, lambda: live.current().catalog)
    filed = registry.now() - dt.timedelta(days=10)  # vehicle tax: 10 minutes' work, so late by days
    request = registry.create_request("DLT", "vehicle_tax_renewal", "ขนส่งนนทบุรี", "3141", filed, actor="cli")
    number = request.tracking_number
    engine.dispose()
    user = user_id()
    post(stack, [text_event(user, f"สถานะ {number}", line_api.issue_reply_token(user))])
    wait_until(lambda: any(t.startswith("🔐") for t in line_api.texts(user)), "the code was not asked")
    post(stack, [text_event(user, "3141", line_api.issue_reply_token(user))])
    wait_until(lambda: any(t.startswith(f"🔎 สถานะคำขอเลขที่ {number}") for t in line_api.texts(user)), "no status")

    def notices() -> list[str]:
        return [t for t in line_api.texts(user) if t.startswith(f"⏰ แจ้งความล่าช้า คำขอเลขที่ {number}")]

    for _ in range(2):  # the scheduler looks at start-up: a second look must not repeat it
        gateway = stack.pids()["gateway"]
        os.killpg(gateway, signal.SIGKILL)
        wait_until(lambda: stack.pids()["gateway"] not in (None, gateway), "the gateway was not restarted")  # noqa: B023
        wait_until(lambda: len(notices()) >= 1, "no delay notice was pushed")
        time.sleep(3)
        assert len(notices()) == 1, notices()
    pushed = [how for how, m in line_api.delivered_with_route(user) if m.get("text", "").startswith("⏰")]
    assert pushed == ["push"]
