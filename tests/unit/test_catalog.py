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
        assert service.source.title and service.verified_on
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
        (lambda d: d["channels"].append({"kind": "office", "name": "x", "hours": [{"days": ["mon"], "open": "8.30", "close": "16:30"}]}),
         "hours[0].open", "HH:MM"),
        (lambda d: d["channels"].append({"kind": "office", "name": "x", "hours": [{"days": ["mon"], "open": "17:00", "close": "09:00"}]}),
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
