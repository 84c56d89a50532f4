"""The agency portal in headless Chromium against the real stack (tests/integration/conftest.py).

Officers and complaints are put into the stack's own database from here (the gateway reads the
same SQLite file and photo directory); complaints come from web-chat identities, which are never
pushed to, so nothing else on the session's stack is disturbed. An officer of DLT logs in, sees
only DLT's complaints, acknowledges, replies and transfers one to DOPA, whose officer resolves
it; an XSS payload in a description stays text. Screenshots are kept in reports/portal/.
"""

from __future__ import annotations

import datetime as dt
import secrets
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from bot.catalog import load_catalog
from bot.complaints import Desk, PhotoStore, file_complaint
from bot.db import make_engine
from bot.gateway.portal.accounts import Officers
from bot.runtime.stack import Stack
from bot.settings import PROJECT_ROOT
from bot.text import buddhist_year

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SHOTS = PROJECT_ROOT / "reports" / "portal"
PASSWORD = "browser-test-" + secrets.token_hex(8)
XSS = '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script>ป้ายวงกลมไม่มา & "ด่วน"'


def _png(width: int = 8, height: int = 6) -> bytes:
    """A small solid PNG (the photo store takes JPEG or PNG by their magic bytes)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    rows = b"".join(b"\x00" + b"\x1d\x3c\x6e" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


PNG = _png()


@dataclass(frozen=True)
class Seeded:
    dlt_user: str
    dopa_user: str
    dlt_case: str  # DLT's, with a photo and a location: acknowledged, answered, transferred
    dopa_case: str  # DOPA's: never visible to DLT
    xss_case: str  # DLT's, its description an XSS payload


@pytest.fixture(scope="module")
def seeded(stack: Stack) -> Iterator[Seeded]:
    settings = stack.settings
    engine = make_engine(settings.database)
    catalog = load_catalog(settings.catalog_dir)
    desk = Desk(engine, settings.verification_secret, lambda: catalog, photos=PhotoStore(settings.data_dir / "photos"))
    suffix = secrets.token_hex(3)
    officers = Officers(engine)
    dlt_user, dopa_user = f"dlt.browser.{suffix}", f"dopa.browser.{suffix}"
    officers.add(dlt_user, PASSWORD, "DLT", display_name="สมชาย (ทดสอบ)")
    officers.add(dopa_user, PASSWORD, "DOPA", display_name="สมหญิง (ทดสอบ)")

    def file(key: str, agency: str, description: str, **kw) -> str:
        return file_complaint(
            desk, reporter=f"web:portal-{suffix}-{key}", idempotency_key=key, description=description,
            agency_code=agency, **kw,
        ).tracking_number

    photo = desk.photos.save(PNG)
    seeded = Seeded(
        dlt_user, dopa_user,
        dlt_case=file("a", "DLT", "ต่อภาษีรถที่สำนักงานขนส่งแล้ว 3 สัปดาห์ยังไม่ได้รับป้ายวงกลม", place="ขนส่งนนทบุรี",
                      latitude=13.8621, longitude=100.5144, photo_ids=[photo.id]),
        dopa_case=file("b", "DOPA", "ที่ว่าการอำเภอให้รอทำบัตรประชาชนนานเกิน 4 ชั่วโมง"),
        xss_case=file("x", "DLT", XSS),
    )
    yield seeded
    engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        brw = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield brw
        finally:
            brw.close()


@pytest.fixture(scope="module")
def shots() -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    return SHOTS


def new_page(browser: Browser, *, phone: bool = False) -> Page:
    viewport = {"width": 390, "height": 844} if phone else {"width": 1100, "height": 900}
    context = browser.new_context(viewport=viewport, locale="th-TH", is_mobile=phone, has_touch=phone)
    page = context.new_page()
    page.set_default_timeout(30_000)
    return page


def log_in(page: Page, gateway_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{gateway_url}/portal/", wait_until="load")
    expect(page.locator("h1")).to_have_text("เข้าสู่ระบบเจ้าหน้าที่")
    page.fill("#username", username)
    page.fill("#password", password)
    page.click("button[type=submit].primary")
    page.wait_for_load_state("load")


@pytest.fixture(scope="module")
def dlt_page(browser: Browser, gateway_url: str, seeded: Seeded) -> Iterator[Page]:
    page = new_page(browser)
    log_in(page, gateway_url, seeded.dlt_user)
    yield page
    page.context.close()


def test_a_wrong_password_gets_the_generic_message(browser, gateway_url, seeded, shots):
    page = new_page(browser)
    log_in(page, gateway_url, seeded.dlt_user, "not-the-password")
    expect(page.locator(".alert")).to_have_text("ชื่อผู้ใช้หรือรหัสผ่านไม่ถูกต้อง")
    assert not [c for c in page.context.cookies() if c["name"] == "sla_portal"]
    page.screenshot(path=str(shots / "01-login-failed.png"), full_page=True)
    page.context.close()


def test_an_officer_logs_in_and_sees_only_their_agencys_complaints(dlt_page: Page, gateway_url, seeded, shots):
    page = dlt_page
    assert page.url.endswith("/portal/queue")
    expect(page.get_by_test_id("officer")).to_have_text("สมชาย (ทดสอบ)")
    expect(page.get_by_test_id("officer-agency")).to_contain_text("กรมการขนส่งทางบก")
    numbers = page.locator("[data-testid=queue] li").evaluate_all("items => items.map(i => i.dataset.number)")
    assert seeded.dlt_case in numbers and seeded.xss_case in numbers
    assert seeded.dopa_case not in numbers
    cookie = next(c for c in page.context.cookies() if c["name"] == "sla_portal")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    page.screenshot(path=str(shots / "02-queue-dlt.png"), full_page=True)
    answer = page.goto(f"{gateway_url}/portal/complaints/{seeded.dopa_case}")
    assert answer.status == 404
    expect(page.locator(".alert")).to_contain_text("ไม่พบเรื่องที่ต้องการ")


def test_the_case_page_shows_the_photo_the_map_link_and_the_routing(dlt_page: Page, gateway_url, seeded, shots):
    page = dlt_page
    page.goto(f"{gateway_url}/portal/queue")
    page.click(f"[data-number='{seeded.dlt_case}'] a")
    expect(page.get_by_test_id("number")).to_have_text(seeded.dlt_case)
    expect(page.get_by_test_id("status")).to_have_text("ส่งถึงหน่วยงานแล้ว รอหน่วยงานตอบรับ")
    expect(page.get_by_test_id("map")).to_have_attribute(
        "href", "https://www.openstreetmap.org/?mlat=13.862100&mlon=100.514400#map=17/13.862100/100.514400"
    )
    image = page.locator(".photos img").first
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth") == 8, "the photo loads for a logged-in officer"
    expect(page.get_by_test_id("routes")).to_contain_text("DLT")
    assert str(buddhist_year(dt.date.today())) in page.locator(".facts").inner_text(), "Buddhist-era dates"
    page.screenshot(path=str(shots / "03-case.png"), full_page=True)


def test_acknowledge_reply_and_transfer(dlt_page: Page, gateway_url, seeded, shots):
    page = dlt_page
    page.goto(f"{gateway_url}/portal/complaints/{seeded.dlt_case}")
    page.get_by_test_id("acknowledge").click()
    page.wait_for_load_state("load")
    expect(page.locator(".notice")).to_have_text("ตอบรับเรื่องแล้ว ผู้ร้องเรียนจะได้รับแจ้ง")
    expect(page.get_by_test_id("status")).to_have_text("หน่วยงานตอบรับเรื่องแล้ว")
    page.fill("#reply-text", "กำลังตรวจสอบกับงานทะเบียนรถ จะแจ้งผลภายใน 3 วันทำการ")
    page.get_by_test_id("reply").click()
    page.wait_for_load_state("load")
    expect(page.get_by_test_id("messages")).to_contain_text("กำลังตรวจสอบกับงานทะเบียนรถ")
    expect(page.get_by_test_id("history")).to_contain_text("ตอบผู้ร้องเรียน")
    page.screenshot(path=str(shots / "04-acknowledged-replied.png"), full_page=True)
    page.select_option("#transfer-to", "DOPA")
    page.fill("#transfer-reason", "ผู้ร้องเรียนแจ้งย้ายที่อยู่ไม่สำเร็จ เป็นงานทะเบียนราษฎร")
    page.get_by_test_id("transfer").click()
    page.wait_for_load_state("load")
    assert page.url.endswith("/portal/queue?done=transferred")
    expect(page.locator(".notice")).to_have_text("โอนเรื่องไปยังหน่วยงานที่เลือกแล้ว")
    numbers = page.locator("[data-testid=queue] li").evaluate_all("items => items.map(i => i.dataset.number)")
    assert seeded.dlt_case not in numbers, "transferred away: no longer DLT's"
    page.screenshot(path=str(shots / "05-transferred.png"), full_page=True)


def test_the_receiving_agency_resolves_it(browser, gateway_url, seeded, shots):
    page = new_page(browser)
    log_in(page, gateway_url, seeded.dopa_user)
    numbers = page.locator("[data-testid=queue] li").evaluate_all("items => items.map(i => i.dataset.number)")
    assert seeded.dlt_case in numbers and seeded.dopa_case in numbers and seeded.xss_case not in numbers
    page.click(f"[data-number='{seeded.dlt_case}'] a")
    expect(page.get_by_test_id("routes")).to_contain_text("เป็นงานทะเบียนราษฎร")
    expect(page.get_by_test_id("agency")).to_contain_text("กรมการปกครอง")
    page.fill("#resolve-outcome", "แก้ไขข้อมูลทะเบียนบ้านและแจ้งขนส่งแล้ว")
    page.get_by_test_id("resolve").click()
    page.wait_for_load_state("load")
    expect(page.get_by_test_id("status")).to_have_text("ดำเนินการแล้วเสร็จ")
    expect(page.get_by_test_id("messages")).to_contain_text("แก้ไขข้อมูลทะเบียนบ้านและแจ้งขนส่งแล้ว")
    expect(page.get_by_test_id("history")).to_contain_text("โอนเรื่อง")
    page.screenshot(path=str(shots / "06-resolved.png"), full_page=True)
    page.context.close()


def test_an_xss_payload_shows_as_text(dlt_page: Page, gateway_url, seeded, shots):
    page = dlt_page
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(f"{gateway_url}/portal/queue")
    expect(page.locator(f"[data-number='{seeded.xss_case}'] .desc")).to_have_text(XSS)
    page.goto(f"{gateway_url}/portal/complaints/{seeded.xss_case}")
    expect(page.get_by_test_id("description")).to_have_text(XSS)
    assert page.evaluate("typeof window.__xss") == "undefined"
    assert page.locator("main img[src=x], main script").count() == 0
    page.screenshot(path=str(shots / "07-xss-as-text.png"), full_page=True)
    assert not errors


def test_the_queue_fits_a_phone(browser, gateway_url, seeded, shots):
    page = new_page(browser, phone=True)
    log_in(page, gateway_url, seeded.dopa_user)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "no sideways scrolling"
    page.screenshot(path=str(shots / "08-queue-phone.png"), full_page=True)
    page.click(f"[data-number='{seeded.dopa_case}'] a")
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(shots / "09-case-phone.png"), full_page=True)
    page.context.close()


def test_logging_out_ends_the_session(dlt_page: Page, gateway_url):
    page = dlt_page
    page.goto(f"{gateway_url}/portal/queue")
    page.click("form[action='/portal/logout'] button")
    page.wait_for_load_state("load")
    expect(page.locator(".notice")).to_have_text("ออกจากระบบแล้ว")
    page.goto(f"{gateway_url}/portal/queue")
    assert "/portal/login" in page.url
