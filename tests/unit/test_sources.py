"""Catalog truth: every key fact names a specific public source, answers say where they come
from and how sure they are, and the sources report is generated and up to date."""

from __future__ import annotations

import datetime as dt
import shutil
from pathlib import Path

import pytest
import yaml

from bot.answers.render import ASPECTS, UNCONFIRMED, display_url, provenance
from bot.assistant import Assistant
from bot.catalog import CatalogError, load_catalog
from bot.catalog.facts import service_facts
from bot.catalog.report import report_as_of, sources_report
from bot.cli import main
from bot.settings import PROJECT_ROOT, TIMEZONE

CATALOG_DIR = PROJECT_ROOT / "sla_catalog"
CATALOG = load_catalog(CATALOG_DIR)
NOW = dt.datetime(2026, 11, 25, 10, 0, tzinfo=TIMEZONE)
ASSISTANT = Assistant.from_catalog(CATALOG, clock=lambda: NOW)
REPORT = PROJECT_ROOT / "reports" / "catalog-sources.md"


@pytest.fixture
def editable(tmp_path) -> Path:
    copy = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, copy)
    return copy


def _edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def _problems(directory: Path) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        load_catalog(directory)
    return [str(p) for p in caught.value.problems]


def _unsource(item: dict) -> None:
    item.pop("source", None)
    item.pop("unverified", None)


@pytest.mark.parametrize(
    "change, expected",
    [
        (lambda d: _unsource(d["fees"][0]), "fees[0]: needs a source"),
        (lambda d: _unsource(d["criteria"][0]), "criteria[0]: needs a source"),
        (lambda d: _unsource(d["time_target"]), "time_target: needs a source"),
        (lambda d: _unsource(d["steps"][0]["duration"]), "steps[0].duration: needs a source"),
        (lambda d: (d.pop("documents_source", None), d.pop("documents_unverified", None), _unsource(d["documents"][0])),
         "documents[0]: needs a source or unverified: true (or give the whole list one documents_source)"),
        (lambda d: d["fees"][0].update(source="nowhere", unverified=False), "fees[0].source: unknown source 'nowhere'"),
        (lambda d: d["sources"][0].update(url="https://www.consular.go.th/"), "sources[0].url: is only a homepage"),
        (lambda d: d["sources"].append(dict(d["sources"][0])), "duplicate source id"),
        (lambda d: d.update(sources=[]), "sources: must list at least one page"),
    ],
)
def test_a_key_fact_without_a_specific_source_is_refused(editable, change, expected):
    _edit(editable / "services" / "passport.yml", change)
    assert any(expected in p for p in _problems(editable)), _problems(editable)


def test_an_agency_hotline_needs_a_source_and_the_central_one_must_be_national(editable):
    _edit(editable / "agencies.yml", lambda d: _unsource(d["agencies"][1]))
    assert any("agencies.yml: agencies[1]: needs a source" in p for p in _problems(editable))
    _edit(editable / "agencies.yml", lambda d: d["agencies"][0].update(hotline_area="กรุงเทพมหานคร"))
    expected = "must include OPM (the public service centre) with its national hotline"
    assert any(expected in p for p in _problems(editable))


@pytest.mark.parametrize("service_id", sorted(CATALOG.services))
def test_every_service_cites_specific_sources_and_says_when_it_was_checked(service_id):
    service = CATALOG.services[service_id]
    assert service.sources, "at least one page about this service"
    assert all(s.url.rstrip("/").count("/") >= 3 for s in service.sources), "no homepages"
    assert service.verified_on <= dt.date.today()
    facts = service_facts(service)
    assert facts and all(f.source or f.unverified for f in facts)


@pytest.mark.parametrize("service_id", sorted(CATALOG.services))
@pytest.mark.parametrize("intent", sorted(ASPECTS))
def test_every_answer_names_its_sources_and_flags_what_is_unverified(service_id, intent):
    service = CATALOG.services[service_id]
    aspect = ASPECTS[intent][0]
    reply = ASSISTANT.answers.answer(service_id, intent, now=NOW)
    used = provenance(service, aspect)
    for source in used.sources:
        assert f"• {source.title} ({source.publisher}" in reply.text and display_url(source.url) in reply.text
    if not used.sources:
        assert "ที่มา: ยังไม่พบแหล่งข้อมูลสาธารณะที่ยืนยันข้อมูลในคำตอบนี้" in reply.text
    assert "ตรวจสอบข้อมูลล่าสุดเมื่อ " in reply.text
    agency = CATALOG.agency_of(service)
    if used.unverified:
        assert UNCONFIRMED in reply.text
        assert f"กรุณาสอบถาม{agency.name}" in reply.text
    else:
        assert UNCONFIRMED not in reply.text and "⚠️" not in reply.text


def test_an_unverified_fee_is_said_with_please_confirm_and_the_agency_contact(editable):
    _edit(editable / "services" / "passport.yml", lambda d: d["fees"][0].update(unverified=True, source=None))
    catalog = load_catalog(editable)
    text = Assistant.from_catalog(catalog, clock=lambda: NOW).answers.answer("passport", "ask_fee", now=NOW).text
    first = catalog.services["passport"].fees[0]
    assert f"• {first.item}" in text and UNCONFIRMED in text.split("\n")[1]
    assert "⚠️" in text and "กรมการกงสุล สายด่วน 02-572-8442" in text


def test_local_government_services_point_to_the_local_office_not_a_bangkok_number():
    lao = CATALOG.agencies["LAO"]
    assert lao.hotline is None, "there is no national number for local governments"
    for service in (s for s in CATALOG.services.values() if s.agency == "LAO"):
        human = ASSISTANT.answers.human_contact(service.id).text
        assert f"ติดต่อ{lao.name} ที่สำนักงานในพื้นที่ของท่าน" in human
        assert "1555" not in human
    area = [a for a in CATALOG.agencies.values() if a.hotline_area]
    for agency in area:
        assert f"(เฉพาะ{agency.hotline_area})" in ASSISTANT.answers.status_help(f"{agency.code}-2569-000001").text


def test_the_sources_report_is_generated_and_committed_up_to_date(tmp_path):
    out = tmp_path / "report.md"
    assert main(["catalog", "sources", "--out", str(out), "--as-of", "2026-11-25"]) == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith("# Catalog sources") and "## To re-check" in text and "## Every key fact" in text
    committed = REPORT.read_text(encoding="utf-8")
    as_of = report_as_of(committed)
    assert as_of is not None
    assert committed == sources_report(CATALOG, as_of), "run `make catalog-report` and commit the report"


def test_the_report_lists_unverified_and_stale_facts(editable):
    _edit(editable / "services" / "passport.yml", lambda d: d["fees"][0].update(unverified=True, source=None))
    catalog = load_catalog(editable)
    later = sources_report(catalog, dt.date(2028, 1, 1))
    recheck = later.split("## To re-check")[1].split("## Every key fact")[0]
    assert "| services/passport.yml | `fees[0]` |" in recheck.split("### Last read")[0]
    assert "### Last read more than a year ago" in recheck
