"""The SLA catalog's data model, after the official citizen-manual template (คู่มือสำหรับประชาชน).

Plain dataclasses on purpose: the catalog is read both by the Rasa environment (pydantic 1)
and by the application environment (pydantic 2), so it depends on nothing but the standard
library and PyYAML. Field names are the YAML keys; `validation.build` turns YAML into these
classes and reports every problem with its file and field path.

Every key fact a citizen relies on (a fee, a time target or step duration, a criterion, a
channel's hours or phone, a hotline, the document list: one `documents_source` for the whole
list, or a `source` on each document) names the `source` it comes from: the
`id` of one of the file's `sources`. A fact no public source confirms says `unverified: true`
instead, and the bot then asks the citizen to confirm it with the agency.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal, Optional

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

DurationUnit = Literal["minutes", "hours", "working_days", "days"]
ChannelKind = Literal["office", "online", "phone", "app", "mobile_unit"]
SourceKind = Literal["gazette", "citizen_manual", "agency_page", "government", "news", "secondary"]


@dataclass(frozen=True)
class Source:
    """A specific public page (never a homepage) that states some of the catalog's facts.

    `kind` ranks it: the Royal Gazette, the agency's own citizen manual or service page, other
    government pages, news, and `secondary` (a private site quoting an official one).
    `published` is the page's own date when it shows one; `retrieved` when it was last read.
    """

    id: str
    title: str
    publisher: str
    url: str
    kind: SourceKind
    retrieved: dt.date
    published: Optional[dt.date] = None


@dataclass(frozen=True)
class Duration:
    """A time span as the manuals state it: minutes/hours of work, or (working) days."""

    value: float
    unit: DurationUnit
    note: Optional[str] = None
    source: Optional[str] = None
    unverified: bool = False


@dataclass(frozen=True)
class Criterion:
    """One condition of eligibility, with the numbers the law or manual sets (ages, deadlines, fines)."""

    text: str
    source: Optional[str] = None
    unverified: bool = False


@dataclass(frozen=True)
class OpeningHours:
    """One block of opening hours, e.g. Mon-Fri 08:30-16:30. Times are 'HH:MM', Bangkok time."""

    days: list[Weekday]
    open: str
    close: str


@dataclass(frozen=True)
class Channel:
    """A place or channel where the service is delivered.

    `always_open` is for online services and hotlines that run around the clock; otherwise
    `hours` lists the opening blocks and public holidays close the channel unless
    `open_on_public_holidays` says otherwise.
    """

    kind: ChannelKind
    name: str
    where: Optional[str] = None
    url: Optional[str] = None
    phone: Optional[str] = None
    hours: list[OpeningHours] = field(default_factory=list)
    always_open: bool = False
    open_on_public_holidays: bool = False
    note: Optional[str] = None
    source: Optional[str] = None
    unverified: bool = False


@dataclass(frozen=True)
class Step:
    """One step of the procedure, with the unit responsible for it and its time target."""

    title: str
    unit: str
    duration: Duration
    detail: Optional[str] = None


@dataclass(frozen=True)
class Document:
    """Evidence the citizen brings. `condition` says when it is needed (e.g. 'กรณีผู้เยาว์')."""

    name: str
    issuer: Optional[str] = None
    originals: int = 0
    copies: int = 0
    condition: Optional[str] = None
    note: Optional[str] = None
    source: Optional[str] = None
    unverified: bool = False


@dataclass(frozen=True)
class Fee:
    """A fee line: a fixed `amount_baht`, or a `rule` when the amount depends on something.

    Both may be given (an amount with the rule that qualifies it). A free service has one
    line with `amount_baht: 0`.
    """

    item: str
    amount_baht: Optional[float] = None
    rule: Optional[str] = None
    source: Optional[str] = None
    unverified: bool = False


@dataclass(frozen=True)
class QualityTarget:
    """A published quality target, e.g. satisfaction at least 85 percent."""

    metric: str
    target_percent: float


@dataclass(frozen=True)
class ComplaintChannel:
    name: str
    phone: Optional[str] = None
    url: Optional[str] = None
    where: Optional[str] = None
    source: Optional[str] = None
    unverified: bool = False


@dataclass(frozen=True)
class Service:
    """One service as its citizen manual describes it.

    `short_name` labels the service's buttons (at most 20 characters, LINE's limit);
    `verified_on` is the date this service's facts were last checked against its sources;
    `aliases` are the words citizens really use and must each name only this service;
    `keywords` are weaker, shared words (รถ, ทะเบียน, ใบอนุญาต) that only suggest candidates.
    """

    id: str
    name: str
    short_name: str
    name_en: str
    agency: str
    summary: str
    aliases: list[str]
    legal_basis: list[str]
    criteria: list[Criterion]
    channels: list[Channel]
    steps: list[Step]
    time_target: Duration
    documents: list[Document]
    fees: list[Fee]
    sources: list[Source]
    verified_on: dt.date
    keywords: list[str] = field(default_factory=list)
    partner_agencies: list[str] = field(default_factory=list)
    fee_exemptions: list[str] = field(default_factory=list)
    quality_targets: list[QualityTarget] = field(default_factory=list)
    complaint_channels: list[ComplaintChannel] = field(default_factory=list)
    documents_source: Optional[str] = None
    documents_unverified: bool = False


@dataclass(frozen=True)
class ComplaintTargets:
    """How fast an agency must acknowledge and resolve a complaint, on the SLA clock."""

    acknowledge: Duration = Duration(1, "working_days")
    resolve: Duration = Duration(15, "working_days")


@dataclass(frozen=True)
class Agency:
    """A government agency. `code` (2-6 ASCII capitals) prefixes its tracking numbers.

    `hotline` is a national number unless `hotline_area` names where it holds (e.g. 1555 is
    Bangkok's line only); an agency with no single number (local governments) has none, and
    answers point citizens to their local office. `source` backs the hotline and channels.
    `aliases` are the names citizens use for it (ขนส่ง, อำเภอ); `misconduct_channel` is where
    reports of bribery or abuse of power go instead of the office complained about.
    """

    code: str
    name: str
    name_en: str
    complaint_channel: str
    aliases: list[str] = field(default_factory=list)
    misconduct_channel: Optional[str] = None
    complaint_targets: ComplaintTargets = ComplaintTargets()
    hotline: Optional[str] = None
    hotline_area: Optional[str] = None
    website: Optional[str] = None
    parent: Optional[str] = None
    source: Optional[str] = None
    unverified: bool = False


SpecialDayKind = Literal["closed", "open"]


@dataclass(frozen=True)
class SpecialDay:
    """A day the cabinet declares at short notice (`special_days.yml`).

    `closed`: government offices close (a special holiday the `holidays` package may not
    know yet); `open`: offices work on a day that would otherwise be a holiday.
    """

    date: dt.date
    kind: SpecialDayKind
    name: str
    source: Optional[str] = None
