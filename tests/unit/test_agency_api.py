"""The agency API over HTTP (in-process gateway, real registry on SQLite and PostgreSQL):
authorisation matrix, validation as 4xx, audit of every change."""

from __future__ import annotations

import dataclasses
from typing import Iterator

import pytest
from fastapi.testclient import TestClient

from bot.casework.api_keys import ApiKeys
from bot.catalog import load_catalog
from bot.db import make_engine, migrate
from bot.gateway.app import create_app
from bot.settings import PROJECT_ROOT, Settings
from tests.unit.databases import database_url  # noqa: F401

CATALOG = load_catalog(PROJECT_ROOT / "sla_catalog")
NEW = {"service_id": "vehicle_tax_renewal", "office": "สำนักงานขนส่งจังหวัดนนทบุรี", "phone_last4": "1234"}


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


def auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_an_agency_files_reads_and_updates_its_own_requests(api):
    client, keys = api
    created = client.post("/api/agency/v1/requests", json=NEW, headers=auth(keys["DLT"]))
    assert created.status_code == 201, created.text
    body = created.json()
    number = body["tracking_number"]
    assert number.startswith("DLT-25") and body["status"] == "received"
    assert body["sla"]["state"] in ("on_time", "at_risk")
    assert "phone_last4" not in body and "1234" not in created.text
    moved = client.post(f"/api/agency/v1/requests/{number}/step", json={"step_index": 1}, headers=auth(keys["DLT"]))
    assert moved.status_code == 200 and moved.json()["step_index"] == 1
    waiting = client.post(
        f"/api/agency/v1/requests/{number}/status",
        json={"status": "waiting_for_citizen", "note": "กรุณานำสำเนาทะเบียนรถมาเพิ่ม"},
        headers=auth(keys["DLT"]),
    )
    assert waiting.json()["sla"]["waiting_for_citizen"] is True
    listed = client.get("/api/agency/v1/requests", params={"status": "waiting_for_citizen"}, headers=auth(keys["DLT"]))
    assert [r["tracking_number"] for r in listed.json()["requests"]] == [number]
    assert client.get(f"/api/agency/v1/requests/{number}", headers=auth(keys["DLT"])).json()["note"] == (
        "กรุณานำสำเนาทะเบียนรถมาเพิ่ม"
    )
    registry = client.app.state.registry
    actions = [e.action for e in registry.audit_trail(subject=number)]
    assert {"create", "step", "status"} <= set(actions)
    actors = {e.actor for e in registry.audit_trail(subject=number)}
    assert len(actors) == 1 and keys["DLT"].startswith(f"slb_{actors.pop()}_"), "the key's id, never the key"


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic abc"}, "revoked"],
)
def test_missing_wrong_or_revoked_keys_are_401(api, headers):
    client, keys = api
    if headers == "revoked":
        headers = auth(keys["revoked"])
    for method, path in (("get", "/api/agency/v1/requests"), ("post", "/api/agency/v1/requests")):
        response = getattr(client, method)(path, headers=headers, **({"json": NEW} if method == "post" else {}))
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"


def test_another_agencys_request_is_404_like_an_unknown_number(api):
    client, keys = api
    number = client.post("/api/agency/v1/requests", json=NEW, headers=auth(keys["DLT"])).json()["tracking_number"]
    theirs = client.get(f"/api/agency/v1/requests/{number}", headers=auth(keys["DCA"]))
    unknown = client.get("/api/agency/v1/requests/DLT-2569-999999", headers=auth(keys["DCA"]))
    assert theirs.status_code == unknown.status_code == 404
    assert client.post(f"/api/agency/v1/requests/{number}/notes", json={"note": "x"},
                       headers=auth(keys["DCA"])).status_code == 404
    assert client.get("/api/agency/v1/requests", headers=auth(keys["DCA"])).json()["requests"] == []


@pytest.mark.parametrize(
    "body, field",
    [
        ({**NEW, "service_id": "passport"}, "service_id"),  # not DLT's
        ({**NEW, "service_id": "no_such"}, "service_id"),
        ({**NEW, "phone_last4": "12a4"}, "phone_last4"),
        ({**NEW, "office": ""}, "office"),
        ({**NEW, "extra": 1}, "extra"),
        ({**NEW, "submitted_at": "2099-01-01T00:00:00+07:00"}, "submitted_at"),
    ],
)
def test_bad_input_is_a_4xx_naming_the_field(api, body, field):
    client, keys = api
    response = client.post("/api/agency/v1/requests", json=body, headers=auth(keys["DLT"]))
    assert response.status_code == 422, response.text
    assert field in response.text


def test_changes_to_a_closed_request_or_unknown_steps_are_refused(api):
    client, keys = api
    number = client.post("/api/agency/v1/requests", json=NEW, headers=auth(keys["DLT"])).json()["tracking_number"]
    too_far = client.post(
        f"/api/agency/v1/requests/{number}/step", json={"step_index": 99}, headers=auth(keys["DLT"])
    )
    assert too_far.status_code == 422 and too_far.json()["field"] == "step_index"
    done = client.post(
        f"/api/agency/v1/requests/{number}/status", json={"status": "completed"}, headers=auth(keys["DLT"])
    )
    assert done.status_code == 200 and done.json()["sla"]["state"].startswith("completed")
    again = client.post(f"/api/agency/v1/requests/{number}/notes", json={"note": "x"}, headers=auth(keys["DLT"]))
    assert again.status_code == 409


def test_the_agency_api_is_documented_in_openapi(api):
    client, _ = api
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/api/agency/v1/requests", "/api/agency/v1/requests/{number}", "/api/agency/v1/requests/{number}/step",
            "/api/agency/v1/requests/{number}/status", "/api/agency/v1/requests/{number}/notes"} <= set(paths)
