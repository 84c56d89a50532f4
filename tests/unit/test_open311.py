"""Open311 GeoReport v2 through the real gateway app (SQLite always, PostgreSQL when TEST_DATABASE_URL is set),
checked field by field against the spec (wiki.open311.org/GeoReport_v2): the service list, service definitions,
POST requests.json (form-encoded and JSON, an agency's api_key, idempotent) and its response, GET requests.json and
requests/{id}.json with their filters and limits, errors as [{"code", "description"}] with the HTTP status; and the
privacy rules: misconduct reports never public, no reporter contact anywhere, contact-like text redacted."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from typing import Any, Iterator

import pytest
from fastapi.testclient import TestClient

from bot.casework.api_keys import ApiKeys
from bot.catalog import load_catalog
from bot.complaints import Officer, case_for_officer, file_complaint, reply, resolve, transfer
from bot.complaints.public import REDACTED, redact
from bot.db import make_engine, migrate
from bot.gateway.app import create_app
from bot.settings import PROJECT_ROOT, TIMEZONE, Settings
from tests.unit.databases import database_url  # noqa: F401

CATALOG = load_catalog(PROJECT_ROOT / "sla_catalog")
BASE = "/open311/v2"
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 100
W3C = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(Z|[+-]\d{2}:\d{2})$")
CMP = re.compile(r"^CMP-\d{4}-\d{6}$")
SERVICE_FIELDS = {"service_code", "service_name", "description", "metadata", "type", "keywords", "group"}
REQUEST_FIELDS = {
    "service_request_id", "status", "status_notes", "service_name", "service_code", "description",
    "agency_responsible", "service_notice", "requested_datetime", "updated_datetime", "expected_datetime",
    "address", "address_id", "zipcode", "lat", "long", "media_url",
}
FORM = {
    "service_code": "vehicle_tax_renewal",
    "description": "รอคิวต่อภาษีรถนานกว่า 3 ชั่วโมง",
    "lat": "13.8621",
    "long": "100.5144",
    "address_string": "สำนักงานขนส่งจังหวัดนนทบุรี",
}
DLT = Officer("DLT", actor="officer:dlt1")


@pytest.fixture
def api(database_url: str, tmp_path) -> Iterator[tuple[TestClient, dict[str, str]]]:  # noqa: F811
    engine = make_engine(database_url)
    migrate(engine)
    keys = ApiKeys(engine, catalog=lambda: CATALOG)
    issued = {code: keys.create(code, "test").key for code in ("DLT", "DCA")}
    revoked = keys.create("DLT", "old")
    keys.revoke(revoked.info.key_id)
    issued["revoked"] = revoked.key
    engine.dispose()
    settings = dataclasses.replace(
        Settings(), database_url=database_url, data_dir=tmp_path, web_session_secret="w", verification_secret="v"
    )
    with TestClient(create_app(settings)) as client:
        yield client, issued


def _desk(client: TestClient):
    return client.app.state.complaints.desk


def _post(client: TestClient, key: str, **fields: Any):
    return client.post(f"{BASE}/requests.json", data={"api_key": key, **FORM, **fields})


def _error(response, code: int) -> str:
    """An Open311 error: the HTTP status and [{"code", "description"}] with the same code."""
    assert response.status_code == code, response.text
    body = response.json()
    assert isinstance(body, list) and len(body) == 1 and set(body[0]) == {"code", "description"}, body
    assert body[0]["code"] == code and isinstance(body[0]["description"], str) and body[0]["description"]
    return body[0]["description"]


def _listed(client: TestClient, **params: Any) -> list[dict[str, Any]]:
    response = client.get(f"{BASE}/requests.json", params=params)
    assert response.status_code == 200, response.text
    return response.json()


# -- services -----------------------------------------------------------------------------------------


def test_service_list_has_one_open311_service_per_catalog_service(api):
    client, _ = api
    response = client.get(f"{BASE}/services.json")
    assert response.status_code == 200 and response.headers["content-type"].startswith("application/json")
    services = response.json()
    assert isinstance(services, list)
    assert {s["service_code"] for s in services} == set(CATALOG.services)
    assert len(services) == len(CATALOG.services)
    for item in services:
        assert set(item) == SERVICE_FIELDS
        service = CATALOG.services[item["service_code"]]
        assert item["service_name"] == service.name
        assert item["description"] == service.summary
        assert item["metadata"] is False  # no attributes to fetch
        assert item["type"] in ("realtime", "batch", "blackbox") and item["type"] == "realtime"
        assert isinstance(item["keywords"], str)  # the spec: a comma-separated list
        assert all(word.strip() == word and word for word in item["keywords"].split(",")) or not item["keywords"]
        assert item["group"] == CATALOG.agency(service.agency).name
    passport = next(s for s in services if s["service_code"] == "passport")
    assert passport["group"] == "กรมการกงสุล"


def test_service_definition_and_unknown_codes(api):
    client, _ = api
    definition = client.get(f"{BASE}/services/passport.json")
    assert definition.status_code == 200
    assert definition.json() == {"service_code": "passport", "attributes": []}
    for code in ("no_such_service", "passport.xml", "%3Cscript%3E"):
        _error(client.get(f"{BASE}/services/{code}.json"), 404)


# -- POST requests.json --------------------------------------------------------------------------------


def test_post_form_encoded_files_a_complaint_and_answers_as_the_spec_says(api):
    client, keys = api
    response = _post(client, keys["DLT"])
    assert response.status_code == 201, response.text
    body = response.json()
    assert isinstance(body, list) and len(body) == 1
    assert set(body[0]) == {"service_request_id", "service_notice", "account_id"}
    number = body[0]["service_request_id"]
    assert CMP.match(number) and body[0]["account_id"] is None
    assert "กรมการขนส่งทางบก" in body[0]["service_notice"]
    case = case_for_officer(_desk(client), number, DLT)
    assert case.complaint.service_id == "vehicle_tax_renewal" and case.complaint.agency_code == "DLT"
    assert case.complaint.place == FORM["address_string"]
    assert (case.complaint.latitude, case.complaint.longitude) == (13.8621, 100.5144)
    assert case.contact == "anonymous"  # no phone given
    assert case.complaint.reporter_channel == "open311"
    one = client.get(f"{BASE}/requests/{number}.json").json()
    assert one[0]["service_request_id"] == number and one[0]["status"] == "open"


def test_post_accepts_json_and_filing_is_idempotent(api):
    client, keys = api
    first = _post(client, keys["DLT"]).json()[0]["service_request_id"]
    again = _post(client, keys["DLT"]).json()[0]["service_request_id"]
    assert again == first, "a retried POST (same fields) is the same complaint"
    as_json = client.post(f"{BASE}/requests.json", json={"api_key": keys["DLT"], **FORM, "lat": 13.8621,
                                                          "long": 100.5144})
    assert as_json.status_code == 201 and as_json.json()[0]["service_request_id"] == first
    keyed = [
        client.post(f"{BASE}/requests.json", data={"api_key": keys["DLT"], **FORM}, headers={"Idempotency-Key": k})
        for k in ("a-1", "a-2", "a-1")
    ]
    ids = [r.json()[0]["service_request_id"] for r in keyed]
    assert ids[0] == ids[2] and len({first, ids[0], ids[1]}) == 3
    other_agency = _post(client, keys["DCA"]).json()[0]["service_request_id"]
    assert other_agency not in {first, *ids}, "idempotency is per agency"
    header_key = client.post(f"{BASE}/requests.json", data=FORM, headers={"Authorization": f"Bearer {keys['DCA']}"})
    assert header_key.json()[0]["service_request_id"] == other_agency


def test_a_missing_unknown_or_revoked_api_key_is_403(api):
    client, keys = api
    for key in (None, "", "nope", "slb_0123456789abcdef_" + "x" * 43, "revoked"):
        data = dict(FORM)
        if key is not None:
            data["api_key"] = keys.get(key, key)
        assert _error(client.post(f"{BASE}/requests.json", data=data), 403) == "Invalid api_key"
    assert _error(client.post(f"{BASE}/requests.json", data=FORM, headers={"Authorization": "Bearer nope"}), 403)
    assert _listed(client) == []


MALFORMED = (
        ({"service_code": None}, "service_code"),
        ({"service_code": "no_such_service"}, "service_code"),
        ({"description": None}, "description"),
        ({"description": "   "}, "description"),
        ({"description": "ก" * 2001}, "description"),
        ({"lat": None, "long": None, "address_string": None}, "location"),
        ({"lat": None, "long": None, "address_string": None, "address_id": "A1"}, "address_id"),
        ({"long": None}, "lat and long"),
        ({"lat": "north"}, "lat"),
        ({"lat": "nan"}, "lat"),
        ({"lat": "95", "long": "100"}, "latitude"),
        ({"address_string": "ก" * 201}, "address_string"),
        ({"phone": "12345"}, "phone"),
        ({"email": "not-an-address"}, "email"),
        ({"first_name": "ก" * 101}, "first_name"),
        ({"media_url": "javascript:alert(1)"}, "media_url"),
        ({"media_url": "https://x.example/" + "a" * 500}, "media_url"),
)


def test_malformed_posts_are_400_naming_the_problem(api):
    client, keys = api
    for change, words in MALFORMED:
        data = {"api_key": keys["DLT"], **FORM, **change}
        data = {k: v for k, v in data.items() if v is not None}
        description = _error(client.post(f"{BASE}/requests.json", data=data), 400)
        assert words in description, (change, description)
    assert _listed(client) == []


BODIES = (
        (b"{not json", "application/json", 400),
        (b"[1, 2]", "application/json", 400),
        (b'{"api_key": 5}', "application/json", 403),
        (b"\xff\xfe=\x00", "application/x-www-form-urlencoded", 400),
        (b"service_code=a&service_code=b", "application/x-www-form-urlencoded", 400),
        (b"just-text-without-equals", "application/x-www-form-urlencoded", 400),
        (b"--x\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--x--", "multipart/form-data; boundary=x", 415),
        (b"<xml/>", "text/xml", 415),
        (b"a=" + b"1" * (70 * 1024), "application/x-www-form-urlencoded", 413),
)


def test_bodies_that_are_not_a_form_or_json_object_are_4xx(api):
    client, _ = api
    for content, content_type, code in BODIES:
        response = client.post(f"{BASE}/requests.json", content=content, headers={"Content-Type": content_type})
        _error(response, code)


def test_json_fields_of_the_wrong_type_are_400(api):
    client, keys = api
    for change in ({"description": ["a"]}, {"lat": True, "long": 1}, {"lat": {"x": 1}, "long": 1},
                   {"service_code": 7}, {"phone": ["0812345678"]}):
        response = client.post(f"{BASE}/requests.json", json={"api_key": keys["DLT"], **FORM, **change})
        _error(response, 400)


def test_a_phone_counts_as_consent_and_no_get_ever_shows_contact(api):
    client, keys = api
    number = _post(
        client, keys["DLT"], phone="081-234-5678", email="somchai@example.com", first_name="สมชาย",
        last_name="ใจดี", description="รอคิวนาน",
    ).json()[0]["service_request_id"]
    desk = _desk(client)
    assert case_for_officer(desk, number, DLT).contact == "phone"
    anonymous = _post(client, keys["DLT"], description="ไม่มีที่จอดรถ").json()[0]["service_request_id"]
    assert case_for_officer(desk, anonymous, DLT).contact == "anonymous"
    for response in (client.get(f"{BASE}/requests.json"), client.get(f"{BASE}/requests/{number}.json"),
                     client.get(f"{BASE}/requests/{anonymous}.json")):
        text = response.text
        assert response.status_code == 200
        for secret in ("0812345678", "081-234-5678", "5678", "somchai", "สมชาย", "ใจดี", "anonymous", "open311:"):
            assert secret not in text
        for item in response.json():
            assert set(item) == REQUEST_FIELDS  # no email, phone, names, account or device fields


def test_media_url_given_by_the_client_is_kept_for_officers_not_fetched(api):
    client, keys = api
    number = _post(client, keys["DLT"], media_url="https://agency.example/p/1.jpg").json()[0]["service_request_id"]
    assert case_for_officer(_desk(client), number, DLT).complaint.description.endswith(
        "photo: https://agency.example/p/1.jpg"
    )
    assert client.get(f"{BASE}/requests/{number}.json").json()[0]["media_url"] is None  # ours only: no photo stored


# -- GET requests.json and requests/{id}.json ------------------------------------------------------------


def test_a_request_field_by_field(api):
    client, keys = api
    desk = _desk(client)
    photo = desk.photos.save(JPEG)
    filed = file_complaint(  # filed by an agency's own system: its details are public
        desk, reporter="open311:DCA", idempotency_key="f1", description="ป้ายบอกทางไม่ชัด โทร 0812345678",
        service_id="passport", place="สำนักงานหนังสือเดินทาง แจ้งวัฒนะ", latitude=13.88, longitude=100.56,
        photo_ids=[photo.id], phone="0812345678", consent=True,
    )
    dca = Officer("DCA", actor="officer:dca1")
    reply(desk, filed.tracking_number, dca, "กำลังตรวจสอบ ติดต่อกลับที่ somchai@example.com")
    item = client.get(f"{BASE}/requests/{filed.tracking_number}.json").json()
    assert isinstance(item, list) and len(item) == 1
    item = item[0]
    assert set(item) == REQUEST_FIELDS
    assert item["service_request_id"] == filed.tracking_number
    assert item["status"] == "open"
    assert item["status_notes"] == f"กำลังตรวจสอบ ติดต่อกลับที่ {REDACTED}"
    assert item["service_code"] == "passport" and item["service_name"] == CATALOG.services["passport"].name
    assert item["description"] == f"ป้ายบอกทางไม่ชัด โทร {REDACTED}"
    assert item["agency_responsible"] == "กรมการกงสุล"
    assert "1 วันทำการ" in item["service_notice"] and "15 วันทำการ" in item["service_notice"]
    for name in ("requested_datetime", "updated_datetime", "expected_datetime"):
        assert W3C.match(item[name]), item[name]
    assert dt.datetime.fromisoformat(item["requested_datetime"]) == filed.filed_at.replace(microsecond=0)
    assert dt.datetime.fromisoformat(item["expected_datetime"]) == filed.resolve_due_at.replace(microsecond=0)
    assert dt.datetime.fromisoformat(item["updated_datetime"]) >= dt.datetime.fromisoformat(item["requested_datetime"])
    assert item["address"] == "สำนักงานหนังสือเดินทาง แจ้งวัฒนะ" and item["address_id"] is None
    assert item["zipcode"] is None
    assert (item["lat"], item["long"]) == (13.88, 100.56)
    assert item["media_url"] == f"http://testserver{BASE}/media/{photo.id}"
    image = client.get(item["media_url"])
    assert image.status_code == 200 and image.content == JPEG and image.headers["content-type"] == "image/jpeg"
    assert image.headers["x-content-type-options"] == "nosniff"
    resolve(desk, filed.tracking_number, dca, "ปรับปรุงป้ายแล้ว")
    done = client.get(f"{BASE}/requests/{filed.tracking_number}.json").json()[0]
    assert done["status"] == "closed" and done["status_notes"] == "ปรับปรุงป้ายแล้ว"


def test_a_complaint_filed_in_chat_is_listed_without_its_text_place_photos_or_replies(api):
    client, keys = api
    desk = _desk(client)
    photo = desk.photos.save(JPEG)
    filed = file_complaint(
        desk, reporter="line:U1", idempotency_key="c1", description="เจ้าหน้าที่พูดจาไม่สุภาพ บ้านเลขที่ 12",
        service_id="passport", place="บ้านของฉัน", latitude=13.88, longitude=100.56, photo_ids=[photo.id],
    )
    reply(desk, filed.tracking_number, Officer("DCA", actor="officer:dca1"), "ขออภัยค่ะ จะตักเตือนเจ้าหน้าที่")
    item = client.get(f"{BASE}/requests/{filed.tracking_number}.json").json()[0]
    assert set(item) == REQUEST_FIELDS
    assert (item["service_code"], item["status"], item["agency_responsible"]) == ("passport", "open", "กรมการกงสุล")
    hidden = ("description", "status_notes", "address", "lat", "long", "media_url")
    assert {name: item[name] for name in hidden} == dict.fromkeys(hidden)
    assert client.get(f"{BASE}/media/{photo.id}").status_code == 404
    listed = client.get(f"{BASE}/requests.json").json()
    assert [i["description"] for i in listed if i["service_request_id"] == filed.tracking_number] == [None]


def test_internal_notes_and_routing_reasons_are_never_status_notes(api):
    client, keys = api
    desk = _desk(client)
    number = _post(client, keys["DLT"]).json()[0]["service_request_id"]
    transfer(desk, number, DLT, "DOPA", "เรื่องนี้เป็นงานทะเบียนราษฎร ภายในเท่านั้น")
    item = client.get(f"{BASE}/requests/{number}.json").json()[0]
    assert item["status_notes"] is None and "ภายในเท่านั้น" not in json.dumps(item, ensure_ascii=False)
    assert item["agency_responsible"] == CATALOG.agency("DOPA").name and item["status"] == "open"


def test_misconduct_reports_are_never_public(api):
    client, keys = api
    desk = _desk(client)
    photo = desk.photos.save(JPEG)
    secret = file_complaint(
        desk, reporter="line:U2", idempotency_key="m1", description="เจ้าหน้าที่เรียกเงินใต้โต๊ะ 500 บาท",
        service_id="driving_licence_renewal", photo_ids=[photo.id], misconduct=True,
    )
    by_post = _post(client, keys["DLT"], description="เจ้าหน้าที่เรียกรับสินบนเพื่อให้ผ่านการสอบ")
    assert by_post.status_code == 201
    posted = by_post.json()[0]["service_request_id"]
    assert CATALOG.agency("PACC").name in by_post.json()[0]["service_notice"]  # the misconduct channel has it
    public = _post(client, keys["DLT"]).json()[0]["service_request_id"]
    listed = _listed(client)
    assert [r["service_request_id"] for r in listed] == [public]
    assert "ใต้โต๊ะ" not in json.dumps(listed, ensure_ascii=False)
    for number in (secret.tracking_number, posted):
        unknown = _error(client.get(f"{BASE}/requests/{number}.json"), 404)
        assert unknown == _error(client.get(f"{BASE}/requests/CMP-2569-999999.json"), 404).replace(
            "CMP-2569-999999", number
        ), "a misconduct report reads exactly like an unknown number"
        assert _listed(client, service_request_id=number) == []
    _error(client.get(f"{BASE}/media/{photo.id}"), 404)


def test_unknown_and_malformed_ids_are_404(api):
    client, _ = api
    for number in ("CMP-2569-999999", "DLT-2569-000001", "nonsense", "%27%20OR%201=1", "x" * 300):
        _error(client.get(f"{BASE}/requests/{number}.json"), 404)
    for photo in ("0" * 32 + ".jpg", "../../etc/passwd", "a.png"):
        assert client.get(f"{BASE}/media/{photo}").status_code == 404


def test_listing_filters_by_ids_service_status_and_dates(api):
    client, keys = api
    desk = _desk(client)
    now = desk.now()

    def filed(key: str, service: str, days_ago: float) -> str:
        return file_complaint(
            desk, reporter="telegram:1", idempotency_key=key, description=f"เรื่อง {key}", service_id=service,
            now=now - dt.timedelta(days=days_ago),
        ).tracking_number

    a = filed("a", "passport", 1)
    b = filed("b", "vehicle_tax_renewal", 2)
    c = filed("c", "passport", 30)
    old = filed("old", "passport", 120)
    resolve(desk, b, DLT, "แก้ไขแล้ว")
    assert [r["service_request_id"] for r in _listed(client)] == [a, b, c], "the last 90 days, newest first"
    assert [r["service_request_id"] for r in _listed(client, service_code="passport")] == [a, c]
    assert [r["service_request_id"] for r in _listed(client, service_code="passport,vehicle_tax_renewal")] == [a, b, c]
    assert [r["service_request_id"] for r in _listed(client, service_code="no_such")] == []
    assert [r["service_request_id"] for r in _listed(client, status="closed")] == [b]
    assert [r["service_request_id"] for r in _listed(client, status="open")] == [a, c]
    assert len(_listed(client, status="open,closed")) == 3
    ids = _listed(client, service_request_id=f"{old},{a},CMP-2569-999999,garbage", status="closed")
    assert {r["service_request_id"] for r in ids} == {a, old}, "ids override every other argument"
    start = (now - dt.timedelta(days=125)).isoformat()
    end = (now - dt.timedelta(days=36)).isoformat()
    assert [r["service_request_id"] for r in _listed(client, start_date=start, end_date=end)] == [old]
    utc = (now - dt.timedelta(days=10)).astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert [r["service_request_id"] for r in _listed(client, start_date=utc)] == [a, b]
    assert [r["service_request_id"] for r in _listed(client, end_date=end)] == [old]  # the 90 days before end
    day = (now - dt.timedelta(days=31)).astimezone(TIMEZONE).date().isoformat()
    assert c in [r["service_request_id"] for r in _listed(client, start_date=day)]  # a date: midnight in Bangkok
    page_1 = _listed(client, page_size=2)
    page_2 = _listed(client, page_size=2, page=2)
    assert [r["service_request_id"] for r in page_1 + page_2] == [a, b, c]


BAD_FILTERS = (
        {"start_date": "2026-01-01T00:00:00+07:00", "end_date": "2026-06-01T00:00:00+07:00"},  # > 90 days
        {"start_date": "2026-06-01T00:00:00+07:00", "end_date": "2026-05-01T00:00:00+07:00"},  # end before start
        {"start_date": "yesterday"},
        {"end_date": "2026-13-45"},
        {"status": "pending"},
        {"status": ","},
        {"service_code": ","},
        {"service_request_id": ","},
        {"service_request_id": ",".join(f"CMP-2569-{i:06d}" for i in range(1001))},
        {"page_size": "1001"},
        {"page_size": "0"},
        {"page": "-1"},
        {"page": "two"},
)


def test_bad_filters_are_400(api):
    client, _ = api
    for params in BAD_FILTERS:
        _error(client.get(f"{BASE}/requests.json", params=params), 400)


def test_at_most_1000_requests_a_page(api):
    client, _ = api
    desk = _desk(client)
    for i in range(1003):
        file_complaint(desk, reporter="web:s", idempotency_key=f"k{i}", description="ไฟฟ้าดับ", service_id="passport")
    assert len(_listed(client)) == 1000
    assert len(_listed(client, page=2)) == 3


def test_other_paths_formats_and_methods_answer_in_open311_format(api):
    client, _ = api
    for path in ("services.xml", "requests.xml", "discovery.json", "requests/CMP-2569-000001.xml", "tokens/1.json"):
        _error(client.get(f"{BASE}/{path}"), 404)
    assert client.delete(f"{BASE}/requests.json").headers["allow"] == "GET, POST"
    _error(client.delete(f"{BASE}/requests.json"), 405)
    _error(client.post(f"{BASE}/services.json"), 405)
    _error(client.put(f"{BASE}/requests/CMP-2569-000001.json"), 405)


# -- redaction (pure) ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, shown",
    [
        ("โทร 081-234-5678 ด่วน", f"โทร {REDACTED} ด่วน"),
        ("โทร 0812345678", f"โทร {REDACTED}"),
        ("เบอร์ +66 81 234 5678", f"เบอร์ {REDACTED}"),
        ("โทร ๐๘๑๒๓๔๕๖๗๘", f"โทร {REDACTED}"),
        ("บัตร 1-2345-67890-12-3", f"บัตร {REDACTED}"),
        ("mail a.b@example.co.th", f"mail {REDACTED}"),
        ("line id: somchai_99", f"line id {REDACTED}"),
        ("ไลน์ @somchai", f"ไลน์ {REDACTED}"),
        ("คำขอ DLT-2569-000123 ค่าธรรมเนียม 1,500 บาท รอ 3 ชั่วโมง วันที่ 15/06/2569", None),
        ("ทะเบียน กข 1234 กรุงเทพ", None),
    ],
)
def test_redaction_of_contact_like_text(text, shown):
    assert redact(text) == (text if shown is None else shown)
