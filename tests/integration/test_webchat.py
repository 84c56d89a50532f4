"""Browser test of the local web chat page against the real gateway + Rasa stack.

`gateway_url` (e.g. "http://127.0.0.1:8000") comes from tests/integration/conftest.py,
which starts the Rasa server, the action server and the gateway with the trained model.
The answers are real bot answers, so the assertions only check robust facts.
"""
from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Page, sync_playwright

from bot.catalog import load_catalog
from bot.settings import PROJECT_ROOT

# Screenshots go to pytest's temporary directory (printed at the end), never into the checkout.

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

REPLY_TIMEOUT_MS = 90_000  # the first answers of a cold Rasa stack can be slow
THAI_RE = re.compile(r"[\u0E00-\u0E7F]")

# Font families able to render Thai (lower-case); the page's stack falls back through these.
THAI_FONT_FAMILIES = {
    "sarabun", "th sarabun new", "noto sans thai", "noto sans thai ui", "noto serif thai",
    "noto sans thai looped", "leelawadee ui", "leelawadee", "thonburi", "tahoma",
    "loma", "garuda", "waree", "umpush", "kinnari", "norasi", "laksaman", "purisa",
    "sawasdee", "tlwg typist", "tlwg typo", "tlwg mono", "tlwg typewriter",
}

VEHICLE_TAX = load_catalog(PROJECT_ROOT / "sla_catalog").services["vehicle_tax_renewal"]
XSS_TEXT = '<img src=x onerror="window.__xss=1">สวัสดี'


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as pw:
        brw = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield brw
        finally:
            brw.close()


@pytest.fixture(scope="module")
def screenshots(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("screenshots")


@pytest.fixture(scope="module")
def page_events():
    """JS errors and request URLs seen by the module-scoped page."""
    return {"errors": [], "requests": []}


@pytest.fixture(scope="module")
def page(browser, page_events):
    context = browser.new_context(viewport={"width": 1024, "height": 768}, locale="th-TH")
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    pg.on("pageerror", lambda exc: page_events["errors"].append(str(exc)))
    pg.on("request", lambda req: page_events["requests"].append(req.url))
    try:
        yield pg
    finally:
        context.close()


# --------------------------------------------------------------------------- helpers


def _base(gateway_url: str) -> str:
    return gateway_url.rstrip("/")


def _open(page: Page, gateway_url: str) -> None:
    """Load the chat page once; later tests continue the same conversation."""
    if not page.url.startswith(_base(gateway_url)):
        page.goto(_base(gateway_url) + "/", wait_until="load")
    page.locator("#input").wait_for(state="visible")


def _bot_count(page: Page) -> int:
    return page.locator("#log .msg.bot").count()


def _wait_for_reply(page: Page, bot_before: int) -> list[dict]:
    """Wait until a new bot message is shown and the typing indicator is gone.

    Returns the new bot messages as {"text", "error"} dicts.
    """
    page.wait_for_function(
        """n => document.querySelectorAll('#log .msg.bot').length > n
               && document.getElementById('typing').hidden""",
        arg=bot_before,
        timeout=REPLY_TIMEOUT_MS,
    )
    return page.eval_on_selector_all(
        "#log .msg.bot",
        """(els, n) => els.slice(n).map(e => ({
               text: e.innerText, error: e.classList.contains('error')}))""",
        bot_before,
    )


def _ask(page: Page, text: str) -> list[dict]:
    """Type `text`, press Enter and return the new bot messages."""
    before = _bot_count(page)
    page.locator("#input").fill(text)
    page.locator("#input").press("Enter")
    return _wait_for_reply(page, before)


def _assert_no_error(new_msgs: list[dict]) -> str:
    errors = [m["text"] for m in new_msgs if m["error"]]
    assert not errors, f"the page showed an error instead of an answer: {errors}"
    return "\n".join(m["text"] for m in new_msgs)


def _platform_fonts(page: Page, selector: str) -> list[dict]:
    """Fonts Chromium actually used to draw the text of `selector` (DevTools protocol)."""
    cdp = page.context.new_cdp_session(page)
    try:
        cdp.send("DOM.enable")
        cdp.send("CSS.enable")
        root = cdp.send("DOM.getDocument", {"depth": -1})
        node = cdp.send("DOM.querySelector", {"nodeId": root["root"]["nodeId"], "selector": selector})
        return cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node["nodeId"]})["fonts"]
    finally:
        cdp.detach()


# --------------------------------------------------------------------------- tests


def test_page_loads_in_thai(page: Page, page_events, gateway_url, screenshots):
    _open(page, gateway_url)

    assert page.title() == "ผู้ช่วยบริการภาครัฐ"
    assert page.locator("html").get_attribute("lang") == "th"
    assert page.locator('meta[name="viewport"]').count() == 1

    inp = page.locator("#input")
    assert THAI_RE.search(inp.get_attribute("placeholder") or "")
    label = inp.evaluate("el => Array.from(el.labels || []).map(l => l.textContent).join(' ')")
    assert THAI_RE.search(label), "the message input needs a Thai <label>"
    assert page.locator("#send").inner_text().strip() == "ส่ง"
    assert page.locator("#log").get_attribute("aria-live") in ("polite", "assertive")
    assert page.locator("#typing").is_hidden()
    # nothing is sent on load: no bot message yet, but starter suggestions are offered
    assert _bot_count(page) == 0
    assert page.locator(".chip:enabled").count() >= 3

    # Thai text is drawn with a Thai-capable font (what Chromium really used, not just CSS)
    fonts = _platform_fonts(page, "h1")
    used = {f["familyName"].lower() for f in fonts if f.get("glyphCount", 0) > 0}
    assert used & THAI_FONT_FAMILIES, f"Thai title not rendered with a Thai font: {fonts}"
    stack = page.locator("h1").evaluate("el => getComputedStyle(el).fontFamily").lower()
    assert "sarabun" in stack and "loma" in stack and "sans-serif" in stack

    # no external downloads (fonts, scripts...): every request stays on the gateway
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(_base(gateway_url)))
    foreign = [u for u in page_events["requests"] if not u.startswith((origin, "data:", "blob:"))]
    assert not foreign, f"page fetched external resources: {foreign}"
    assert not page_events["errors"], page_events["errors"]

    page.screenshot(path=str(screenshots / "webchat.png"), full_page=True)


def test_documents_question(page: Page, gateway_url):
    _open(page, gateway_url)
    users_before = page.locator("#log .msg.user").count()

    text = _assert_no_error(_ask(page, "ต่อภาษีรถยนต์ต้องใช้เอกสารอะไรบ้างครับ"))

    assert text.startswith(f"📄 เอกสารที่ต้องใช้: {VEHICLE_TAX.name}"), text
    assert VEHICLE_TAX.documents[0].name in text and "ที่มา:" in text, text
    assert page.locator("#log .msg.user").nth(users_before).inner_text() == (
        "ต่อภาษีรถยนต์ต้องใช้เอกสารอะไรบ้างครับ"
    )
    # the input is cleared and keeps keyboard focus for the next question
    assert page.locator("#input").input_value() == ""
    assert page.evaluate("document.activeElement && document.activeElement.id") == "input"


def test_fee_follow_up(page: Page, gateway_url):
    _open(page, gateway_url)
    text = _assert_no_error(_ask(page, "แล้วค่าธรรมเนียมล่ะ"))
    assert text.startswith(f"💰 ค่าธรรมเนียม: {VEHICLE_TAX.name}"), text


def test_the_conversation_belongs_to_this_browser_only(page: Page, browser, gateway_url):
    """The gateway's session cookie (HttpOnly) carries the identity: a reload keeps the
    conversation, another visitor starts their own, and the page's script cannot read it."""
    page.reload()
    _open(page, gateway_url)
    assert _assert_no_error(_ask(page, "แล้วใช้เวลากี่วัน")).startswith(f"⏱️ ระยะเวลาให้บริการ: {VEHICLE_TAX.name}")
    assert page.evaluate("document.cookie") == "", "the session cookie is HttpOnly"
    [cookie] = [c for c in page.context.cookies() if c["name"] == "sla_chat"]
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    other = browser.new_context(locale="th-TH").new_page()
    try:
        _open(other, gateway_url)
        text = _assert_no_error(_ask(other, "แล้วใช้เวลากี่วัน"))
        assert VEHICLE_TAX.name not in text, "another visitor must not continue this conversation"
    finally:
        other.context.close()


def test_ambiguous_question_offers_chips(page: Page, gateway_url, screenshots):
    _open(page, gateway_url)
    _assert_no_error(_ask(page, "อยากทำใบอนุญาต"))

    chips = page.locator("#log .msg.bot .chip:enabled")
    assert chips.count() >= 2, "an ambiguous question should offer at least two quick replies"
    first = chips.first.element_handle()
    title = first.inner_text().strip()
    assert title

    users_before = page.locator("#log .msg.user").count()
    bots_before = _bot_count(page)
    first.click()
    new_msgs = _wait_for_reply(page, bots_before)
    text = _assert_no_error(new_msgs)
    assert text.strip(), "the bot should answer the chosen quick reply"

    users = page.locator("#log .msg.user")
    assert users.count() == users_before + 1
    assert users.nth(users_before).inner_text().strip() == title
    # chips of the older message are retired once the newer answer arrived
    assert first.is_disabled()

    page.screenshot(path=str(screenshots / "webchat-conversation.png"))


def test_text_is_escaped(page: Page, page_events, gateway_url):
    _open(page, gateway_url)
    users_before = page.locator("#log .msg.user").count()

    _ask(page, XSS_TEXT)  # the reply may be an answer or a polite error; both are fine

    assert page.locator("#log .msg.user").nth(users_before).inner_text() == XSS_TEXT
    assert page.locator("#log img").count() == 0
    assert page.evaluate("typeof window.__xss") == "undefined"
    tags = set(page.eval_on_selector_all("#log *", "els => els.map(e => e.tagName)"))
    assert tags <= {"DIV", "A", "BUTTON"}, f"unexpected elements in the log: {tags}"
    hrefs = page.eval_on_selector_all("#log a", "els => els.map(a => a.href)")
    assert all(h.startswith(("http://", "https://")) for h in hrefs), hrefs
    assert not page_events["errors"], page_events["errors"]


def test_mobile_layout(browser, gateway_url, screenshots):
    context = browser.new_context(
        viewport={"width": 360, "height": 740},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        locale="th-TH",
    )
    try:
        pg = context.new_page()
        pg.set_default_timeout(30_000)
        pg.goto(_base(gateway_url) + "/", wait_until="load")

        def check_layout():
            for sel in ("#input", "#send"):
                loc = pg.locator(sel)
                assert loc.is_visible(), f"{sel} is not visible"
                box = loc.bounding_box()
                assert box and box["x"] >= 0 and box["x"] + box["width"] <= 360, (sel, box)
                assert box["y"] >= 0 and box["y"] + box["height"] <= 740, (sel, box)
            scroll_width = pg.evaluate("document.documentElement.scrollWidth")
            assert scroll_width <= 360, f"horizontal scroll: scrollWidth={scroll_width}"

        check_layout()

        # a starter suggestion sends its text; long answers (URLs...) must not widen the page
        starter = pg.locator(".chip:enabled").first
        starter_text = starter.inner_text().strip()
        before = pg.locator("#log .msg.bot").count()
        starter.tap()
        _wait_for_reply(pg, before)
        assert pg.locator("#log .msg.user").first.inner_text().strip() == starter_text
        check_layout()

        pg.screenshot(path=str(screenshots / "webchat-mobile.png"))
    finally:
        context.close()
