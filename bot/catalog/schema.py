"""The SLA catalog's data model, after the official citizen-manual template (คู่มือสำหรับประชาชน).

Plain dataclasses on purpose: the catalog is read both by the Rasa environment (pydantic 1)
and by the application environment (pydantic 2), so it depends on nothing but the standard
library and PyYAML. Field names are the YAML keys; `validation.build` turns YAML into these
classes and reports every problem with its file and field path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal, Optional

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

DurationUnit = Literal["minutes", "hours", "working_days", "days"]
ChannelKind = Literal["office", "online", "phone", "app", "mobile_unit"]


@dataclass(frozen=True)
class Duration:
    """A time span as the manuals state it: minutes/hours of work, or (working) days."""

    value: float
    unit: DurationUnit
    note: Optional[str] = None


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


@dataclass(frozen=True)
class Fee:
    """A fee line: a fixed `amount_baht`, or a `rule` when the amount depends on something.

    Both may be given (an amount with the rule that qualifies it). A free service has one
    line with `amount_baht: 0`.
    """

    item: str
    amount_baht: Optional[float] = None
    rule: Optional[str] = None


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


@dataclass(frozen=True)
class Source:
    """Where the facts come from, named in every answer."""

    title: str
    publisher: str
    url: Optional[str] = None


@dataclass(frozen=True)
class Service:
    """One service as its citizen manual describes it.

    `short_name` labels the service's buttons (at most 20 characters, LINE's limit);
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
    criteria: list[str]
    channels: list[Channel]
    steps: list[Step]
    time_target: Duration
    documents: list[Document]
    fees: list[Fee]
    source: Source
    verified_on: dt.date
    keywords: list[str] = field(default_factory=list)
    partner_agencies: list[str] = field(default_factory=list)
    fee_exemptions: list[str] = field(default_factory=list)
    quality_targets: list[QualityTarget] = field(default_factory=list)
    complaint_channels: list[ComplaintChannel] = field(default_factory=list)


@dataclass(frozen=True)
class Agency:
    """A government agency. `code` (2-6 ASCII capitals) prefixes its tracking numbers."""

    code: str
    name: str
    name_en: str
    complaint_channel: str
    hotline: Optional[str] = None
    website: Optional[str] = None
    parent: Optional[str] = None


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
