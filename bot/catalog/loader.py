"""Load and validate the SLA catalog directory.

Layout: `agencies.yml` (a list under `agencies:`) and `services/<service_id>.yml`, one file
per service. Loading checks every field and the links between files, and raises
`CatalogError` listing all problems (file, field, reason).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable
from urllib.parse import urlsplit

import yaml

from bot.answers.reply import BUTTON_TITLE_MAX
from bot.catalog.facts import KeyFact, agency_facts, service_facts
from bot.catalog.schema import Agency, Channel, Service, Source, SpecialDay
from bot.catalog.validation import CatalogError, Problem, build
from bot.text import normalize
from bot.tracking import COMPLAINT_CODE

SERVICE_ID = re.compile(r"^[a-z][a-z0-9_]{2,63}$")
AGENCY_CODE = re.compile(r"^[A-Z]{2,6}$")
SOURCE_ID = re.compile(r"^[a-z][a-z0-9_]{1,63}$")
CLOCK = re.compile(r"^([01]\d|2[0-3]):[0-5]\d$")
MIN_ALIAS_CHARS = 3
# The government's public service centre (hotline 1111): fallback, out-of-scope, complaint
# and unknown-number replies all point to it, so a catalog without it cannot be answered from.
CENTRAL_AGENCY = "OPM"


@dataclass(frozen=True)
class Catalog:
    """The validated catalog. `fingerprint` changes whenever any catalog file changes."""

    services: dict[str, Service]
    agencies: dict[str, Agency]
    fingerprint: str
    special_days: tuple[SpecialDay, ...] = ()
    agency_sources: tuple[Source, ...] = ()

    def service(self, service_id: str) -> Service | None:
        return self.services.get(service_id)

    def agency(self, code: str) -> Agency | None:
        return self.agencies.get(code.upper())

    def agency_of(self, service: Service) -> Agency:
        return self.agencies[service.agency]

    @property
    def central(self) -> Agency:
        """The public service centre every reply can fall back on (validated to exist)."""
        return self.agencies[CENTRAL_AGENCY]


def load_catalog(directory: str | Path, *, today: dt.date | None = None) -> Catalog:
    """Read, validate and cross-check the catalog under `directory`."""
    root = Path(directory)
    problems: list[Problem] = []
    digest = hashlib.sha256()

    agencies, agency_sources = _load_agencies(root / "agencies.yml", problems, digest)
    today = today or dt.date.today()

    services: dict[str, Service] = {}
    service_files = sorted((root / "services").glob("*.yml"))
    if not service_files:
        problems.append(Problem(str(root / "services"), "", "no service files (*.yml) found"))
    for path in service_files:
        raw = _read_yaml(path, problems, digest)
        if raw is None:
            continue
        service, found = build(Service, raw, str(path))
        problems += found
        if service is not None:
            problems += _check_service(service, path, agencies, today)
            services[service.id] = service
    problems += _check_aliases_unique(services, root)
    special_days = _load_special_days(root / "special_days.yml", problems, digest)
    if problems:
        raise CatalogError(problems)
    return Catalog(
        services=services,
        agencies=agencies,
        fingerprint=digest.hexdigest()[:16],
        special_days=special_days,
        agency_sources=tuple(agency_sources),
    )


def _load_agencies(path: Path, problems: list[Problem], digest: Any) -> tuple[dict[str, Agency], list[Source]]:
    """`agencies.yml`: the `sources` its hotlines come from, and the list under `agencies:`."""
    file = str(path)
    agencies: dict[str, Agency] = {}
    raw = _read_yaml(path, problems, digest)
    if raw is None:
        return agencies, []
    if not isinstance(raw, dict) or not isinstance(raw.get("agencies"), list):
        problems.append(Problem(file, "agencies", "must be a list of agencies"))
        return agencies, []
    sources, found = build(list[Source], raw.get("sources", []), file)
    problems += [_prefixed(p, "sources") for p in found]
    sources = sources or []
    problems += _check_sources(sources, file)
    source_ids = {s.id for s in sources}
    for i, item in enumerate(raw["agencies"]):
        agency, found = build(Agency, item, file)
        problems += [_prefixed(p, f"agencies[{i}]") for p in found]
        if agency is not None:
            problems += _check_agency(agency, i, agencies, file)
            for fact in agency_facts(agency, i):
                problems += _attribution_problems(fact, fact.field, source_ids, file)
            agencies[agency.code] = agency
    for code, agency in agencies.items():
        if agency.parent and agency.parent not in agencies:
            problems.append(Problem(file, f"{code}.parent", f"unknown agency {agency.parent!r}"))
        misconduct = agency.misconduct_channel
        if misconduct and misconduct not in agencies:
            problems.append(Problem(file, f"{code}.misconduct_channel", f"unknown agency {misconduct!r}"))
        if misconduct == code:
            problems.append(Problem(file, f"{code}.misconduct_channel", "must be another agency than this one"))
    problems += _check_agency_aliases_unique(agencies, file)
    central = agencies.get(CENTRAL_AGENCY)
    if central is None or not central.hotline or central.hotline_area:
        problems.append(
            Problem(
                file, "agencies",
                f"must include {CENTRAL_AGENCY} (the public service centre) with its national hotline: "
                "fallback and complaint replies point to it",
            )
        )
    return agencies, sources


def _check_agency_aliases_unique(agencies: dict[str, Agency], file: str) -> list[Problem]:
    """An alias names one agency: ขนส่ง cannot mean two of them."""
    problems: list[Problem] = []
    owner: dict[str, str] = {}
    for code, agency in agencies.items():
        for i, alias in enumerate(agency.aliases):
            key = alias.casefold()
            if key in owner and owner[key] != code:
                problems.append(Problem(file, f"{code}.aliases[{i}]", f"{alias!r} already names {owner[key]}"))
            owner.setdefault(key, code)
    return problems


def _check_sources(sources: list[Source], file: str, prefix: str = "sources") -> list[Problem]:
    """Ids unique; every URL a specific page, because a homepage proves nothing."""
    problems = []
    seen: set[str] = set()
    for i, source in enumerate(sources):
        where = f"{prefix}[{i}]"
        if not SOURCE_ID.match(source.id):
            problems.append(Problem(file, f"{where}.id", "must be lower-case letters, digits and underscores"))
        if source.id in seen:
            problems.append(Problem(file, f"{where}.id", f"duplicate source id {source.id!r}"))
        seen.add(source.id)
        if not _is_url(source.url):
            problems.append(Problem(file, f"{where}.url", "must start with https:// or http://"))
        elif "%EF%BF%BD" in source.url.upper() or "\ufffd" in source.url:
            problems.append(
                Problem(file, f"{where}.url", "is garbled (replacement characters); copy the page's address again")
            )
        elif _is_homepage(source.url):
            problems.append(
                Problem(file, f"{where}.url", "is only a homepage; cite the page that states the facts")
            )
        if source.published and source.published > source.retrieved:
            problems.append(Problem(file, f"{where}.published", "is after the date it was retrieved"))
    return problems


def _attribution_problems(fact: KeyFact, where: str, source_ids: set[str], file: str) -> list[Problem]:
    """A key fact names one of the file's sources, or says `unverified: true`."""
    if fact.source is None:
        if fact.unverified:
            return []
        if where.startswith("documents["):
            return [
                Problem(
                    file, where,
                    "needs a source or unverified: true (or give the whole list one documents_source)",
                )
            ]
        return [Problem(file, where, "needs a source (the id of one of `sources`), or unverified: true")]
    if fact.source not in source_ids:
        return [Problem(file, f"{where}.source", f"unknown source {fact.source!r}; see `sources`")]
    return []


def _load_special_days(path: Path, problems: list[Problem], digest: Any) -> tuple[SpecialDay, ...]:
    """`special_days.yml` (optional): a list under `special_days:`; one entry per date."""
    if not path.exists():
        return ()
    raw = _read_yaml(path, problems, digest)
    if raw is None:
        return ()
    if not isinstance(raw, dict) or not isinstance(raw.get("special_days") or [], list):
        problems.append(Problem(str(path), "special_days", "must be a list of days"))
        return ()
    days: dict[dt.date, SpecialDay] = {}
    for i, item in enumerate(raw.get("special_days") or []):
        day, found = build(SpecialDay, item, str(path))
        problems += [_prefixed(p, f"special_days[{i}]") for p in found]
        if day is None:
            continue
        if day.date in days:
            problems.append(Problem(str(path), f"special_days[{i}].date", f"{day.date} is listed twice"))
        if day.source and not _is_url(day.source):
            problems.append(Problem(str(path), f"special_days[{i}].source", "must start with https:// or http://"))
        days[day.date] = day
    return tuple(sorted(days.values(), key=lambda d: d.date))


def _read_yaml(path: Path, problems: list[Problem], digest: Any) -> Any:
    try:
        content = path.read_bytes()
    except OSError as exc:
        problems.append(Problem(str(path), "", f"cannot read file: {exc.strerror}"))
        return None
    digest.update(path.name.encode() + b"\0" + content)
    try:
        data = yaml.safe_load(content)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else ""
        problems.append(Problem(str(path), where, f"not valid YAML: {getattr(exc, 'problem', exc)}"))
        return None
    if data is None:
        problems.append(Problem(str(path), "", "file is empty"))
    return data


def _prefixed(problem: Problem, prefix: str) -> Problem:
    field = f"{prefix}.{problem.field}" if problem.field else prefix
    return Problem(problem.file, field, problem.reason)


def _check_agency(agency: Agency, i: int, seen: dict[str, Agency], file: str) -> list[Problem]:
    problems = []
    where = f"agencies[{i}].code"
    if not AGENCY_CODE.match(agency.code):
        problems.append(Problem(file, where, "must be 2 to 6 capital letters A-Z"))
    if agency.code == COMPLAINT_CODE:
        problems.append(Problem(file, where, f"{COMPLAINT_CODE} is reserved for complaints"))
    if agency.code in seen:
        problems.append(Problem(file, where, f"duplicate agency code {agency.code}"))
    if agency.website and not _is_url(agency.website):
        problems.append(Problem(file, f"agencies[{i}].website", "must start with https:// or http://"))
    return problems


def _check_service(
    service: Service, path: Path, agencies: dict[str, Agency], today: dt.date
) -> list[Problem]:
    file = str(path)
    problems: list[Problem] = []

    def problem(field: str, reason: str) -> None:
        problems.append(Problem(file, field, reason))

    if not SERVICE_ID.match(service.id):
        problem("id", "must be lower-case letters, digits and underscores, e.g. vehicle_tax_renewal")
    if path.stem != service.id:
        problem("id", f"must match the file name ({path.stem})")
    if len(service.short_name) > BUTTON_TITLE_MAX:
        problem("short_name", f"must be at most {BUTTON_TITLE_MAX} characters (LINE's button label limit)")
    if service.agency not in agencies:
        problem("agency", f"unknown agency code {service.agency!r}; see agencies.yml")
    for i, code in enumerate(service.partner_agencies):
        if code not in agencies:
            problem(f"partner_agencies[{i}]", f"unknown agency code {code!r}")
    for name in ("aliases", "channels", "steps", "fees"):
        if not getattr(service, name):
            problem(name, "must list at least one entry")
    for i, alias in enumerate(service.aliases):
        if len(normalize(alias, drop_spaces=True).text) < MIN_ALIAS_CHARS:
            problem(f"aliases[{i}]", f"too short to match reliably (at least {MIN_ALIAS_CHARS} characters)")
    for i, channel in enumerate(service.channels):
        problems += [
            Problem(file, f"channels[{i}].{field}", reason) for field, reason in _channel_problems(channel)
        ]
    for i, fee in enumerate(service.fees):
        if fee.amount_baht is None and fee.rule is None:
            problem(f"fees[{i}]", "needs amount_baht, or a rule saying what the amount depends on")
    for i, target in enumerate(service.quality_targets):
        if target.target_percent > 100:
            problem(f"quality_targets[{i}].target_percent", "must be at most 100")
    for i, channel in enumerate(service.complaint_channels):
        if channel.url and not _is_url(channel.url):
            problem(f"complaint_channels[{i}].url", "must start with https:// or http://")
    problems += _check_sources(service.sources, file)
    if not service.sources:
        problem("sources", "must list at least one page about this service")
    ids = {s.id for s in service.sources}
    for fact in service_facts(service):
        problems += _attribution_problems(fact, fact.field, ids, file)
    if service.verified_on > today:
        problem("verified_on", "is in the future")
    return problems



def _channel_problems(channel: Channel) -> Iterable[tuple[str, str]]:
    if channel.url and not _is_url(channel.url):
        yield "url", "must start with https:// or http://"
    if channel.kind == "online" and not channel.url:
        yield "url", "an online channel needs its address"
    if channel.always_open and channel.hours:
        yield "hours", "give either always_open: true or hours, not both"
    if channel.kind in ("office", "mobile_unit") and not (channel.hours or channel.always_open or channel.note):
        yield "hours", "an office needs its opening hours, or a note saying where they are announced"
    for j, block in enumerate(channel.hours):
        if not block.days:
            yield f"hours[{j}].days", "must list at least one day"
        for name in ("open", "close"):
            if not CLOCK.match(getattr(block, name)):
                yield f"hours[{j}].{name}", 'must be a time written "HH:MM", e.g. "08:30"'
        if CLOCK.match(block.open) and CLOCK.match(block.close) and block.open >= block.close:
            yield f"hours[{j}]", "closes before it opens"


def _check_aliases_unique(services: dict[str, Service], root: Path) -> list[Problem]:
    """An alias names exactly one service, or the bot could not tell which one is meant."""
    owner: dict[str, str] = {}
    problems = []
    for service in services.values():
        for i, alias in enumerate(service.aliases):
            key = normalize(alias, drop_spaces=True).text
            other = owner.setdefault(key, service.id)
            if other != service.id:
                problems.append(
                    Problem(
                        str(root / "services" / f"{service.id}.yml"),
                        f"aliases[{i}]",
                        f"{alias!r} is also an alias of {other}; move it to keywords in both",
                    )
                )
    return problems


def _is_url(value: str) -> bool:
    return value.startswith(("https://", "http://"))


def _is_homepage(url: str) -> bool:
    parts = urlsplit(url)
    return parts.path.strip("/") == "" and not parts.query
