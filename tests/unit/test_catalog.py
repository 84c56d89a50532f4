"""The catalog loads, and every kind of editing mistake is reported with file, field and reason."""

import shutil
from pathlib import Path

import pytest
import yaml

from bot.catalog import CatalogError, load_catalog
from bot.cli import main
from bot.settings import PROJECT_ROOT

CATALOG = PROJECT_ROOT / "sla_catalog"
CONTRACT_SERVICES = {
    "vehicle_tax_renewal", "driving_licence_renewal", "id_card", "change_of_address",
    "birth_registration", "passport", "commercial_registration", "building_permit",
    "elderly_allowance", "foreign_worker_permit", "food_shop_permit", "criminal_record_check",
}


def test_the_real_catalog_has_every_contract_service():
    catalog = load_catalog(CATALOG)
    assert CONTRACT_SERVICES <= set(catalog.services)
    for service in catalog.services.values():
        assert service.sources and service.verified_on
        assert catalog.agency_of(service).name


@pytest.fixture
def editable(tmp_path) -> Path:
    copy = tmp_path / "catalog"
    shutil.copytree(CATALOG, copy)
    return copy


def _edit(path: Path, change) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")


def _office(opens: str, closes: str) -> dict:
    return {"kind": "office", "name": "x", "hours": [{"days": ["mon"], "open": opens, "close": closes}]}


def _problems(directory: Path) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        load_catalog(directory)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    "change, field, reason",
    [
        (lambda d: d.pop("fees"), "fees", "is required"),
        (lambda d: d.update(fee=[]), "fee", "unknown field"),
        (lambda d: d["fees"][0].update(amount_baht="ห้าร้อย"), "fees[0].amount_baht", "must be a number"),
        (lambda d: d["fees"][0].update(amount_baht=None, rule=None), "fees[0]", "needs amount_baht"),
        (lambda d: d.update(agency="XYZ"), "agency", "unknown agency code"),
        (lambda d: d["channels"][0].update(kind="fax"), "channels[0].kind", "must be one of"),
        (lambda d: d["channels"].append(_office("8.30", "16:30")),
         "hours[0].open", "HH:MM"),
        (lambda d: d["channels"].append(_office("17:00", "09:00")),
         "hours[0]", "closes before it opens"),
        (lambda d: d.update(verified_on="20/11/2026"), "verified_on", "YYYY-MM-DD"),
        (lambda d: d.update(id="passport_renewal"), "id", "must match the file name"),
        (lambda d: d["aliases"].append("บัตรประชาชน"), "aliases", "is also an alias of id_card"),
    ],
)
def test_broken_service_file_is_reported_precisely(editable, change, field, reason):
    target = editable / "services" / "passport.yml"
    _edit(target, change)
    problems = _problems(editable)
    assert any(str(target) in p and field in p and reason in p for p in problems), problems


def test_yaml_syntax_error_names_the_line(editable):
    target = editable / "services" / "id_card.yml"
    target.write_text("id: id_card\nname: [unclosed\n", encoding="utf-8")
    problems = _problems(editable)
    assert any(str(target) in p and "line" in p and "not valid YAML" in p for p in problems)


def test_phone_number_written_as_a_number_is_explained(editable):
    _edit(editable / "agencies.yml", lambda d: d["agencies"][1].update(hotline=1584))
    problems = _problems(editable)
    assert any("agencies[1].hotline" in p and "put quotes" in p for p in problems)


def test_all_problems_are_reported_at_once(editable):
    _edit(editable / "services" / "passport.yml", lambda d: d.pop("steps"))
    _edit(editable / "services" / "id_card.yml", lambda d: d.update(agency="NOPE"))
    problems = _problems(editable)
    assert any("passport.yml: steps" in p for p in problems)
    assert any("id_card.yml: agency" in p for p in problems)


def test_cli_check_exits_non_zero_with_the_problems(editable, capsys):
    _edit(editable / "services" / "passport.yml", lambda d: d.pop("documents"))
    assert main(["catalog", "check", str(editable)]) == 1
    err = capsys.readouterr().err
    assert "passport.yml: documents: is required" in err
    assert main(["catalog", "check", str(CATALOG)]) == 0
    assert "OK: " in capsys.readouterr().out


@pytest.mark.parametrize(
    "change, field, reason",
    [
        (lambda d: d.update(short_name="ใบอนุญาตทำงานของคนต่างด้าว"), "short_name", "at most 20 characters"),
        (lambda d: d.pop("short_name"), "short_name", "is required"),
    ],
)
def test_button_labels_must_fit_every_channel(editable, change, field, reason):
    target = editable / "services" / "passport.yml"
    _edit(target, change)
    assert any(field in p and reason in p for p in _problems(editable))


def test_a_catalog_without_the_public_service_centre_is_refused(editable):
    _edit(editable / "agencies.yml", lambda d: d.update(agencies=[a for a in d["agencies"] if a["code"] != "OPM"]))
    assert any("must include OPM" in p for p in _problems(editable))


def test_complaint_fields_of_agencies_are_checked(editable):
    def change(d):
        dlt = next(a for a in d["agencies"] if a["code"] == "DLT")
        dlt.update(misconduct_channel="NOPE", aliases=[*dlt["aliases"], "อำเภอ"])
        next(a for a in d["agencies"] if a["code"] == "DOE").update(misconduct_channel="DOE")

    _edit(editable / "agencies.yml", change)
    problems = _problems(editable)
    assert any("DLT.misconduct_channel" in p and "unknown agency 'NOPE'" in p for p in problems)
    assert any("DOE.misconduct_channel" in p and "another agency than this one" in p for p in problems)
    assert any("aliases" in p and "'อำเภอ' already names" in p for p in problems)


def test_agencies_have_aliases_and_complaint_targets_with_defaults():
    catalog = load_catalog(CATALOG)
    dlt = catalog.agencies["DLT"]
    assert "ขนส่ง" in dlt.aliases and dlt.misconduct_channel == "PACC"
    assert (dlt.complaint_targets.acknowledge.value, dlt.complaint_targets.acknowledge.unit) == (1, "working_days")
    assert (dlt.complaint_targets.resolve.value, dlt.complaint_targets.resolve.unit) == (15, "working_days")


def test_special_days_are_validated(editable):
    (editable / "special_days.yml").write_text(
        "special_days:\n"
        "  - {date: 2026-12-07, kind: closed, name: วันหยุดพิเศษ, source: https://www.thaigov.go.th/news/1}\n"
        "  - {date: 2026-12-07, kind: closed, name: ซ้ำ}\n"
        "  - {date: 2026-12-08, kind: maybe, name: x}\n",
        encoding="utf-8",
    )
    problems = _problems(editable)
    assert any("special_days[1].date" in p and "listed twice" in p for p in problems)
    assert any("special_days[2].kind" in p and "must be one of" in p for p in problems)


def test_special_days_load_into_the_catalog(editable):
    (editable / "special_days.yml").write_text(
        "special_days:\n  - {date: 2026-12-07, kind: closed, name: วันหยุดพิเศษ}\n", encoding="utf-8"
    )
    [day] = load_catalog(editable).special_days
    assert (day.date.isoformat(), day.kind, day.name) == ("2026-12-07", "closed", "วันหยุดพิเศษ")


def test_without_the_hotline_every_fallback_needs_check_and_live_reload_refuse(editable, capsys):
    from bot.assistant import LiveAssistant

    live = LiveAssistant(editable)
    before = live.current()
    _edit(editable / "agencies.yml", lambda d: d["agencies"][0].update(hotline=None))
    assert main(["catalog", "check", str(editable)]) == 1
    assert "must include OPM" in capsys.readouterr().err
    assert live.current() is before, "the live reload keeps the last good catalog"


def test_a_reply_that_cannot_render_refuses_the_catalog(editable, monkeypatch, capsys):
    from bot.answers.render import AnswerRenderer
    from bot.assistant import LiveAssistant

    live = LiveAssistant(editable)
    before = live.current()
    real_render = AnswerRenderer._render

    def fees_template_broken(self, template, **context):
        if template == "fees" and context["service"].id == "passport":
            raise KeyError("amount")
        return real_render(self, template, **context)

    monkeypatch.setattr(AnswerRenderer, "_render", fees_template_broken)
    _edit(editable / "services" / "passport.yml", lambda d: d["fees"][0].update(amount_baht=1000))
    assert main(["catalog", "check", str(editable)]) == 1
    expected = "services/passport.yml: answer to ask_fee: the answer cannot be rendered: KeyError"
    assert expected in capsys.readouterr().err
    assert live.current() is before


def test_every_reply_renders_for_every_service_of_the_real_catalog():
    from bot.assistant import Assistant

    assistant = Assistant.from_catalog(load_catalog(CATALOG))
    assert assistant.render_problems() == []
