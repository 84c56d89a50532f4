"""The agency portal over HTTP (in-process gateway, real complaint desk on SQLite and PostgreSQL):
login and its throttling, sessions that expire on a controllable clock, CSRF on every form, an
officer limited to their agency (404 like an unknown number), the central role, escaping of
whatever a citizen typed, photos only behind a login, the actions, contact withheld for
misconduct reports, webhook dead letters with a resend, and the officers' CLI."""

from __future__ import annotations

import dataclasses
import io
import re
from typing import Iterator

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from fastapi.testclient import TestClient

from bot.complaints import file_complaint, subscribe
from bot.db import make_engine, migrate, transaction, writer
from bot.db.models import PortalSessionRow, WebhookDeliveryRow
from bot.gateway.app import create_app
from bot.gateway.limits import RateLimiter
from bot.gateway.portal import Portal
from bot.gateway.portal.accounts import Officers
from bot.gateway.portal.views import LOGIN_FAILED, LOGIN_PER_ADDRESS, LOGIN_PER_USERNAME
from bot.gateway.state import MemoryState
from bot.settings import Settings
from tests.unit.databases import FakeClock, bangkok, database_url  # noqa: F401

NOW = bangkok(2026, 6, 15, 10, 0)  # a Monday
CHEAP = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)  # tests only: fast, still argon2id
PASSWORD = "correct-horse-battery"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">ป้ายทะเบียน & "ราคา"'
CSRF_FIELD = re.compile(r'name="csrf" value="([^"]+)"')


@dataclasses.dataclass
class Env:
    client: TestClient
    clock: FakeClock
    portal: Portal

    @property
    def desk(self):
        return self.client.app.state.complaints.desk

    def file(self, key: str, agency: str = "DLT", description: str = "เจ้าหน้าที่พูดจาไม่สุภาพ", **kw):
        return file_complaint(
            self.desk, reporter=f"line:U{key}", idempotency_key=key, description=description, agency_code=agency, **kw
        )


@pytest.fixture
def env(database_url: str, tmp_path) -> Iterator[Env]:  # noqa: F811
    migrate(database_url)
    settings = dataclasses.replace(
        Settings(), database_url=database_url, data_dir=tmp_path, web_session_secret="w", verification_secret="v"
    )
    clock = FakeClock(NOW)
    with TestClient(create_app(settings)) as client:
        desk = client.app.state.complaints.desk
        desk.clock = clock
        portal = client.app.state.portal = Portal(desk, clock=clock, hasher=CHEAP)
        # A fixed one-minute window, so a test never straddles two.
        client.app.state.limiter = RateLimiter(MemoryState(), clock=lambda: 1_000_020.0)
        for username, agency, central in (("dlt1", "DLT", False), ("dopa1", "DOPA", False),
                                          ("pacc1", "PACC", False), ("central1", "OPM", True)):
            portal.officers.add(username, PASSWORD, agency, display_name=f"เจ้าหน้าที่ {username}", central=central)
        yield Env(client, clock, portal)


def login_form(client: TestClient, next_: str = "") -> str:
    page = client.get("/portal/login" + (f"?next={next_}" if next_ else ""))
    assert page.status_code == 200
    return CSRF_FIELD.search(page.text).group(1)


def log_in(client: TestClient, username: str, password: str = PASSWORD, next_: str = "/portal/queue"):
    token = login_form(client)
    return client.post(
        "/portal/login", data={"username": username, "password": password, "csrf": token, "next": next_},
        follow_redirects=False,
    )


def csrf_of(client: TestClient, path: str = "/portal/queue") -> str:
    page = client.get(path)
    assert page.status_code == 200, page.text
    return CSRF_FIELD.search(page.text).group(1)


def new_client(env: Env) -> TestClient:
    """A second browser on the same app (its own cookies)."""
    return TestClient(env.client.app)


# -- login, logout, throttling -----------------------------------------------------------------


def test_login_sets_a_strict_httponly_session_cookie_and_logout_revokes_it(env):
    client = env.client
    assert client.get("/portal/queue", follow_redirects=False).headers["location"] == (
        "/portal/login?next=%2Fportal%2Fqueue"
    )
    answer = log_in(client, "DLT1")  # usernames are case-insensitive
    assert answer.status_code == 303 and answer.headers["location"] == "/portal/queue"
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("sla_portal="))
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/portal" in cookie
    assert "Secure" not in cookie  # plain http here; https gets Secure
    queue = client.get("/portal/queue")
    assert queue.status_code == 200 and "เจ้าหน้าที่ dlt1" in queue.text and "กรมการขนส่งทางบก" in queue.text
    assert queue.headers["cache-control"] == "no-store"
    assert "frame-ancestors 'none'" in queue.headers["content-security-policy"]
    token = client.cookies.get("sla_portal")
    with transaction(env.desk.engine) as session:  # only the token's hash is stored
        assert session.get(PortalSessionRow, token) is None
        assert session.scalar(sa.select(sa.func.count()).select_from(PortalSessionRow)) == 1
    out = client.post("/portal/logout", data={"csrf": csrf_of(client)}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/portal/login?done=logged_out"
    stolen = new_client(env)
    stolen.cookies.set("sla_portal", token, path="/portal")
    assert stolen.get("/portal/queue", follow_redirects=False).status_code == 303, "a revoked session is dead"


def test_logging_in_again_ends_the_session_it_replaces(env):
    log_in(env.client, "dlt1")
    first = env.client.cookies.get("sla_portal")
    log_in(env.client, "dopa1")
    assert env.client.cookies.get("sla_portal") != first
    stale = new_client(env)
    stale.cookies.set("sla_portal", first, path="/portal")
    assert stale.get("/portal/queue", follow_redirects=False).status_code == 303


def test_https_sessions_get_secure_cookies(env):
    client = TestClient(env.client.app, base_url="https://portal.example")
    answer = log_in(client, "dlt1")
    cookie = next(c for c in answer.headers.get_list("set-cookie") if c.startswith("sla_portal="))
    assert "Secure" in cookie


def test_every_failed_login_gets_the_same_words(env):
    env.portal.officers.set_disabled("pacc1")
    answers = [
        log_in(env.client, "dlt1", "wrong-password-1"),
        log_in(env.client, "nobody-here", PASSWORD),
        log_in(env.client, "pacc1", PASSWORD),  # disabled
        log_in(env.client, "dlt1", ""),
    ]
    for answer in answers:
        assert answer.status_code == 401 and LOGIN_FAILED in answer.text
        assert "sla_portal=" not in answer.headers.get("set-cookie", "")
    bodies = {
        CSRF_FIELD.sub("", a.text).replace("nobody-here", "X").replace("pacc1", "X").replace("dlt1", "X")
        for a in answers
    }
    assert len(bodies) == 1, "the pages differ only by the echoed username (and the form's token)"


def test_logins_are_throttled_per_username_and_per_address(env):
    for _ in range(LOGIN_PER_USERNAME):
        assert log_in(env.client, "dlt1", "wrong-password-1").status_code == 401
    throttled = log_in(env.client, "dlt1")  # even the right password now waits
    assert throttled.status_code == 429 and int(throttled.headers["retry-after"]) > 0
    assert "กรุณารอ" in throttled.text and "sla_portal=" not in throttled.headers.get("set-cookie", "")
    assert log_in(env.client, "dopa1").status_code == 303, "another username from the same address still may"
    for i in range(LOGIN_PER_ADDRESS - LOGIN_PER_USERNAME - 2):
        log_in(env.client, f"guess{i}", "wrong-password-1")
    assert log_in(env.client, "central1").status_code == 429, "the address's limit holds for every username"


def test_a_login_post_without_the_forms_token_is_refused(env):
    login_form(env.client)
    answer = env.client.post(
        "/portal/login", data={"username": "dlt1", "password": PASSWORD, "csrf": "forged"}, follow_redirects=False
    )
    assert answer.status_code == 403
    fresh = new_client(env)  # no login cookie at all
    answer = fresh.post("/portal/login", data={"username": "dlt1", "password": PASSWORD, "csrf": ""})
    assert answer.status_code == 403


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/elsewhere", "/portal\\@evil"])
def test_login_never_redirects_outside_the_portal(env, target):
    answer = log_in(env.client, "dlt1", next_=target)
    assert answer.headers["location"] == "/portal/queue"


# -- sessions expire ---------------------------------------------------------------------------


def test_sessions_expire_after_30_idle_minutes(env):
    log_in(env.client, "dlt1")
    env.clock.advance(minutes=29)
    assert env.client.get("/portal/queue").status_code == 200  # used: the idle clock restarts
    env.clock.advance(minutes=29)
    assert env.client.get("/portal/queue").status_code == 200
    env.clock.advance(minutes=31)
    answer = env.client.get("/portal/queue", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/portal/login")


def test_sessions_expire_8_hours_after_login_however_busy(env):
    log_in(env.client, "dlt1")
    for _ in range(16):  # every 25 minutes for 6 h 40 min
        env.clock.advance(minutes=25)
        assert env.client.get("/portal/queue").status_code == 200
    env.clock.advance(minutes=25)
    assert env.client.get("/portal/queue").status_code == 200  # 7 h 5 min
    env.clock.advance(minutes=56)  # 8 h 1 min
    assert env.client.get("/portal/queue", follow_redirects=False).status_code == 303


def test_disabling_an_officer_ends_their_open_sessions(env):
    log_in(env.client, "dlt1")
    assert env.client.get("/portal/queue").status_code == 200
    env.portal.officers.set_disabled("dlt1")
    assert env.client.get("/portal/queue", follow_redirects=False).status_code == 303


# -- CSRF ----------------------------------------------------------------------------------------


def test_forms_without_or_with_a_wrong_csrf_token_change_nothing(env):
    complaint = env.file("c1")
    number = complaint.tracking_number
    log_in(env.client, "dlt1")
    url = f"/portal/complaints/{number}/acknowledge"
    other = new_client(env)
    log_in(other, "central1")
    another_sessions_token = csrf_of(other)
    for data in ({"note": ""}, {"csrf": ""}, {"csrf": "0" * 64}, {"csrf": another_sessions_token}):
        answer = env.client.post(url, data=data, follow_redirects=False)
        assert answer.status_code == 403, data
    assert "ส่งถึงหน่วยงานแล้ว" in env.client.get(f"/portal/complaints/{number}").text  # still received
    answer = env.client.post(url, data={"csrf": csrf_of(env.client)}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == f"/portal/complaints/{number}?done=acknowledged"
    page = env.client.get(answer.headers["location"])
    assert "หน่วยงานตอบรับเรื่องแล้ว" in page.text and "ตอบรับเรื่องแล้ว ผู้ร้องเรียนจะได้รับแจ้ง" in page.text
    json_post = env.client.post(url, json={"csrf": csrf_of(env.client)})
    assert json_post.status_code == 415, "only forms"


# -- who sees what ---------------------------------------------------------------------------------


def test_an_officer_of_dlt_cannot_see_or_act_on_a_dopa_complaint(env):
    env.desk.photos.save(JPEG)
    photo = env.desk.photos.save(JPEG)
    dopa = env.file("d1", agency="DOPA", description="อำเภอให้รอนาน", photo_ids=[photo.id])
    dlt = env.file("t1", agency="DLT", description="ขนส่งให้รอนาน")
    log_in(env.client, "dlt1")
    queue = env.client.get("/portal/queue").text
    assert dlt.tracking_number in queue and dopa.tracking_number not in queue
    unknown = env.client.get("/portal/complaints/CMP-2569-999999")
    hidden = env.client.get(f"/portal/complaints/{dopa.tracking_number}")
    assert hidden.status_code == unknown.status_code == 404 and hidden.text == unknown.text
    token = csrf_of(env.client)
    for action, data in (("acknowledge", {}), ("reply", {"text": "x"}), ("status", {"status": "in_progress"}),
                         ("transfer", {"to_agency": "DLT", "reason": "x"}), ("resolve", {"outcome": "x"}),
                         ("contact", {})):
        answer = env.client.post(
            f"/portal/complaints/{dopa.tracking_number}/{action}", data={"csrf": token, **data}, follow_redirects=False
        )
        assert answer.status_code == 404, action
    assert env.client.get(f"/portal/complaints/{dopa.tracking_number}/photos/{photo.id}").status_code == 404
    other = new_client(env)
    log_in(other, "dopa1")
    assert "ส่งถึงหน่วยงานแล้ว" in other.get(f"/portal/complaints/{dopa.tracking_number}").text, "untouched"


def test_the_central_role_sees_every_agency_and_filters_by_one(env):
    dopa = env.file("d1", agency="DOPA")
    dlt = env.file("t1", agency="DLT")
    log_in(env.client, "central1")
    every = env.client.get("/portal/queue").text
    assert dopa.tracking_number in every and dlt.tracking_number in every
    assert "ทุกหน่วยงาน (ส่วนกลาง)" in every
    only = env.client.get("/portal/queue", params={"agency": "dopa"}).text
    assert dopa.tracking_number in only and dlt.tracking_number not in only
    assert env.client.get(f"/portal/complaints/{dlt.tracking_number}").status_code == 200


def test_the_queue_is_sorted_by_due_time_marks_overdue_ones_and_filters_by_status(env):
    old = env.file("old", description="เรื่องเก่า")
    env.clock.advance(days=3)
    new = env.file("new", description="เรื่องใหม่")
    log_in(env.client, "dlt1")
    page = env.client.get("/portal/queue").text
    assert page.index(old.tracking_number) < page.index(new.tracking_number)
    overdue = re.findall(r'<li class="case( overdue)?" data-number="([^"]+)"', page)
    assert (" overdue", old.tracking_number) in overdue and ("", new.tracking_number) in overdue
    assert "เกินกำหนด" in page and "2569" in page, "Buddhist-era dates"
    only_overdue = env.client.get("/portal/queue", params={"overdue": "1"}).text
    assert old.tracking_number in only_overdue and new.tracking_number not in only_overdue
    env.client.post(f"/portal/complaints/{new.tracking_number}/acknowledge", data={"csrf": csrf_of(env.client)})
    acknowledged = env.client.get("/portal/queue", params={"status": "acknowledged"}).text
    assert new.tracking_number in acknowledged and old.tracking_number not in acknowledged
    assert env.client.get("/portal/queue", params={"status": "nonsense"}).status_code == 200


# -- what a citizen typed is text -------------------------------------------------------------------


def test_an_xss_payload_shows_as_text_everywhere(env):
    complaint = env.file("x1", description=XSS, place=XSS)
    log_in(env.client, "dlt1")
    number = complaint.tracking_number
    env.client.post(f"/portal/complaints/{number}/reply", data={"csrf": csrf_of(env.client), "text": XSS})
    for path in ("/portal/queue", f"/portal/complaints/{number}"):
        page = env.client.get(path).text
        assert "<script>window.__xss" not in page and "<img src=x" not in page
        assert "&lt;script&gt;window.__xss=1&lt;/script&gt;&lt;img src=x onerror=" in page
        assert "ป้ายทะเบียน &amp; &#34;ราคา&#34;" in page
    page = env.client.get(f"/portal/complaints/{number}").text
    assert page.count("&lt;script&gt;") >= 3, "description, place and the officer's own reply"


# -- photos --------------------------------------------------------------------------------------------


def test_photos_are_served_only_to_a_logged_in_officer_who_may_see_the_complaint(env):
    photo = env.desk.photos.save(JPEG)
    other_photo = env.desk.photos.save(JPEG)
    complaint = env.file("p1", photo_ids=[photo.id])
    env.file("p2", photo_ids=[other_photo.id])
    url = f"/portal/complaints/{complaint.tracking_number}/photos/{photo.id}"
    anonymous = env.client.get(url, follow_redirects=False)
    assert anonymous.status_code == 303 and JPEG not in anonymous.content
    log_in(env.client, "dlt1")
    served = env.client.get(url)
    assert served.status_code == 200 and served.content == JPEG and served.headers["content-type"] == "image/jpeg"
    assert "no-store" in served.headers["cache-control"] and served.headers["x-content-type-options"] == "nosniff"
    assert f'src="{url}"' in env.client.get(f"/portal/complaints/{complaint.tracking_number}").text
    # another complaint's photo through this complaint, and path tricks: not found
    for bad in (other_photo.id, "../../sla-bot.db", "%2e%2e%2fsla-bot.db"):
        assert env.client.get(f"/portal/complaints/{complaint.tracking_number}/photos/{bad}").status_code == 404


# -- the actions --------------------------------------------------------------------------------------


def test_acknowledge_reply_transfer_and_resolve(env):
    complaint = env.file("a1", description="ต่อภาษีรถแล้วไม่ได้ป้ายวงกลม", latitude=13.8621, longitude=100.5144)
    number = complaint.tracking_number
    log_in(env.client, "dlt1")
    page = env.client.get(f"/portal/complaints/{number}").text
    assert "https://www.openstreetmap.org/?mlat=13.862100&amp;mlon=100.514400" in page
    assert 'rel="noopener noreferrer"' in page
    token = csrf_of(env.client)
    post = lambda action, **data: env.client.post(  # noqa: E731
        f"/portal/complaints/{number}/{action}", data={"csrf": token, **data}, follow_redirects=False
    )
    assert post("acknowledge").headers["location"].endswith("?done=acknowledged")
    assert post("reply", text="กำลังตรวจสอบกับงานทะเบียน").headers["location"].endswith("?done=replied")
    assert post("reply", text="   ").headers["location"].endswith("?error=text")
    assert post("status", status="in_progress").headers["location"].endswith("?done=status")
    assert post("status", status="reopened").headers["location"].endswith("?error=transition")
    assert post("transfer", to_agency="DLT", reason="x").headers["location"].endswith("?error=same_agency")
    assert post("transfer", to_agency="NOPE", reason="x").headers["location"].endswith("?error=agency")
    assert post("transfer", to_agency="DOPA", reason="").headers["location"].endswith("?error=reason")
    moved = post("transfer", to_agency="DOPA", reason="เป็นงานทะเบียนราษฎร")
    assert moved.headers["location"] == "/portal/queue?done=transferred", "no longer DLT's to see"
    assert env.client.get(f"/portal/complaints/{number}").status_code == 404
    dopa = new_client(env)
    log_in(dopa, "dopa1")
    page = dopa.get(f"/portal/complaints/{number}").text
    assert "เป็นงานทะเบียนราษฎร" in page and "โอนเรื่อง" in page and "กำลังตรวจสอบกับงานทะเบียน" in page
    assert "ส่งถึงหน่วยงานแล้ว" in page, "received again at DOPA, with DOPA's deadlines"
    token = csrf_of(dopa)
    answer = dopa.post(f"/portal/complaints/{number}/resolve", data={"csrf": token, "outcome": ""},
                       follow_redirects=False)
    assert answer.headers["location"].endswith("?error=outcome")
    answer = dopa.post(f"/portal/complaints/{number}/resolve", data={"csrf": token, "outcome": "แก้ไขที่อยู่แล้ว"},
                       follow_redirects=False)
    assert answer.headers["location"].endswith("?done=resolved")
    page = dopa.get(f"/portal/complaints/{number}").text
    assert "ดำเนินการแล้วเสร็จ" in page and "แก้ไขที่อยู่แล้ว" in page
    history = page.split('data-testid="history"')[1]
    for label in ("ยื่นเรื่องร้องเรียน", "เปลี่ยนสถานะ", "ตอบผู้ร้องเรียน", "โอนเรื่อง", "เจ้าหน้าที่ dlt1", "เจ้าหน้าที่ dopa1"):
        assert label in history, label
    assert 'data-testid="transfer"' not in page, "a resolved complaint cannot be transferred"


def test_the_reporters_contact_is_audited_and_withheld_from_the_agency_a_misconduct_report_is_about(env):
    report = env.file("m1", description="เจ้าหน้าที่เรียกรับเงินใต้โต๊ะ", misconduct=True, phone="0812345678",
                      consent=True)
    number = report.tracking_number
    assert report.agency_code == "PACC"
    log_in(env.client, "pacc1")
    shown = env.client.post(f"/portal/complaints/{number}/contact", data={"csrf": csrf_of(env.client)})
    assert shown.status_code == 200 and "0812345678" in shown.text
    assert "เปิดดูเบอร์ติดต่อผู้ร้องเรียน" in env.client.get(f"/portal/complaints/{number}").text, "audited"
    assert "0812345678" not in env.client.get(f"/portal/complaints/{number}").text, "only on the POST's page"
    env.client.post(f"/portal/complaints/{number}/transfer",
                    data={"csrf": csrf_of(env.client), "to_agency": "DLT", "reason": "ให้หน่วยงานชี้แจง"})
    dlt = new_client(env)
    log_in(dlt, "dlt1")
    page = dlt.get(f"/portal/complaints/{number}").text
    assert "ไม่เปิดเผยต่อหน่วยงานของท่าน" in page and "แสดงเบอร์ติดต่อ" not in page
    answer = dlt.post(f"/portal/complaints/{number}/contact", data={"csrf": csrf_of(dlt)})
    assert "0812345678" not in answer.text


# -- webhooks and requests ----------------------------------------------------------------------------


def test_dead_lettered_webhooks_are_listed_and_resent_only_by_their_agency(env):
    # The sender stays off: a resent delivery stays pending (the test's clock is not the sender's).
    env.client.portal.call(env.client.app.state.complaints.webhooks.stop)
    subscribe(env.desk, "DLT", "http://127.0.0.1:9/hook", actor="cli")
    env.file("w1")
    with transaction(writer(env.desk.engine)) as session:
        session.execute(
            sa.update(WebhookDeliveryRow).values(state="failed", lease_owner=None, lease_until=None,
                                                 last_error="HTTP 500")
        )
        key = session.scalar(sa.select(WebhookDeliveryRow.key))
    dopa = new_client(env)
    log_in(dopa, "dopa1")
    assert key not in dopa.get("/portal/webhooks").text
    answer = dopa.post("/portal/webhooks/resend", data={"csrf": csrf_of(dopa), "key": key}, follow_redirects=False)
    assert answer.status_code == 404
    log_in(env.client, "dlt1")
    page = env.client.get("/portal/webhooks").text
    assert key in page and "http://127.0.0.1:9/hook" in page and "HTTP 500" in page
    answer = env.client.post("/portal/webhooks/resend", data={"csrf": csrf_of(env.client), "key": key},
                             follow_redirects=False)
    assert answer.headers["location"] == "/portal/webhooks?done=resent"
    again = env.client.post("/portal/webhooks/resend", data={"csrf": csrf_of(env.client), "key": key},
                            follow_redirects=False)
    assert again.headers["location"] == "/portal/webhooks?error=not_resent", "no longer a dead letter"


def test_the_registry_requests_of_the_officers_agency(env):
    registry = env.client.app.state.registry
    mine = registry.create_request("DLT", "vehicle_tax_renewal", "ขนส่งนนทบุรี", "1234", actor="cli")
    theirs = registry.create_request("DCA", "passport", "แจ้งวัฒนะ", "5678", actor="cli")
    log_in(env.client, "dlt1")
    page = env.client.get("/portal/requests", params={"agency": "DCA"}).text
    assert mine.tracking_number in page and theirs.tracking_number not in page, "an officer's own agency only"
    central = new_client(env)
    log_in(central, "central1")
    assert theirs.tracking_number in central.get("/portal/requests", params={"agency": "DCA"}).text


# -- accounts and the CLI -------------------------------------------------------------------------------


def test_passwords_are_stored_as_argon2id_hashes_and_checked(database_url):  # noqa: F811
    engine = make_engine(database_url)
    migrate(engine)
    officers = Officers(engine, hasher=CHEAP)
    account = officers.add("somchai", PASSWORD, "DLT")
    assert account.officer.actor == "officer:somchai" and not account.officer.central
    with engine.connect() as connection:
        stored = connection.exec_driver_sql("SELECT password_hash FROM portal_officers").scalar()
    assert stored.startswith("$argon2id$") and PASSWORD not in stored
    assert officers.authenticate("somchai", PASSWORD).last_login_at is not None
    assert officers.authenticate("somchai", PASSWORD + "x") is None
    with pytest.raises(Exception, match="taken"):
        officers.add("SOMCHAI", PASSWORD, "DLT")
    with pytest.raises(Exception, match="10 to 200"):
        officers.add("short", "short", "DLT")
    engine.dispose()


def test_the_add_officer_command_reads_the_password_from_stdin(tmp_path, monkeypatch, capsys):
    from bot import cli

    monkeypatch.setenv("DATA_DIR", str(tmp_path))
    monkeypatch.delenv("DATABASE_URL", raising=False)
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    argv = ["portal", "add-officer", "--agency", "dlt", "--username", "Somchai", "--password-stdin"]
    assert cli.main(argv) == 0
    assert "Officer somchai (officer, DLT)" in capsys.readouterr().out
    monkeypatch.setattr("sys.stdin", io.StringIO(PASSWORD + "\n"))
    assert cli.main([*argv[:3], "NOPE", *argv[4:]]) == 1
    assert "unknown agency" in capsys.readouterr().err
    engine = make_engine(f"sqlite:///{tmp_path / 'sla-bot.db'}")
    assert Officers(engine).authenticate("somchai", PASSWORD) is not None
    engine.dispose()


def test_demo_officers_only_on_embedded_defaults_with_the_readme_passwords(tmp_path, capsys):
    from bot.gateway.portal.commands import DEMO_OFFICERS, print_demo_officers
    from bot.settings import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    embedded = dataclasses.replace(Settings(), data_dir=tmp_path)
    migrate(embedded.database)
    print_demo_officers(embedded)
    print_demo_officers(embedded)  # once
    printed = capsys.readouterr().out
    engine = make_engine(embedded.database)
    officers = Officers(engine)
    for username, agency, central, _name, password in DEMO_OFFICERS:
        assert printed.count(f"{username} · {password}") == 1
        assert f"{username} · {password} · " in readme
        account = officers.authenticate(username, password)
        assert account is not None and account.agency_code == agency and account.central is central
    engine.dispose()
    operator = dataclasses.replace(Settings(), data_dir=tmp_path / "op", database_url=f"sqlite:///{tmp_path / 'op.db'}")
    migrate(operator.database)
    print_demo_officers(operator)
    engine = make_engine(operator.database)
    assert Officers(engine).accounts() == [], "no published passwords in an operator's database"
    engine.dispose()
