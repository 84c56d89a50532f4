"""The key facts of the catalog: what a citizen relies on, each with the source that states it.

One definition used three ways: the loader refuses a key fact without a source (or an
explicit `unverified: true`), the answers name the sources of the facts they show and flag
the unverified ones, and `sla-bot catalog sources` lists them all for agency editors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from bot.catalog.schema import Agency, Service

FactTopic = Literal["documents", "fees", "duration", "eligibility", "channels", "complaints", "hotline"]


@dataclass(frozen=True)
class KeyFact:
    topic: FactTopic
    field: str  # the YAML path in its file, e.g. fees[0]
    summary: str  # what the fact says, short, for the report
    source: Optional[str]
    unverified: bool


def service_facts(service: Service) -> list[KeyFact]:
    """Every key fact of one service, in file order."""
    facts = [
        KeyFact("duration", "time_target", f"{service.time_target.value:g} {service.time_target.unit}",
                service.time_target.source, service.time_target.unverified),
    ]
    facts += [
        KeyFact("duration", f"steps[{i}].duration", f"{s.title}: {s.duration.value:g} {s.duration.unit}",
                s.duration.source, s.duration.unverified)
        for i, s in enumerate(service.steps)
    ]
    facts += [
        KeyFact("fees", f"fees[{i}]", f"{f.item}: {_amount(f.amount_baht)}", f.source, f.unverified)
        for i, f in enumerate(service.fees)
    ]
    facts += [
        KeyFact("eligibility", f"criteria[{i}]", c.text, c.source, c.unverified)
        for i, c in enumerate(service.criteria)
    ]
    facts += [
        KeyFact("channels", f"channels[{i}]", _channel_summary(c.name, c.phone, bool(c.hours)), c.source, c.unverified)
        for i, c in enumerate(service.channels)
        if c.hours or c.phone
    ]
    facts += [
        KeyFact("complaints", f"complaint_channels[{i}]", f"{c.name}: {c.phone}", c.source, c.unverified)
        for i, c in enumerate(service.complaint_channels)
        if c.phone
    ]
    if service.documents_source or service.documents_unverified:
        facts.append(
            KeyFact("documents", "documents_source", f"{len(service.documents)} documents",
                    service.documents_source, service.documents_unverified)
        )
    else:  # no page states the whole list: each document names its own source
        facts += [
            KeyFact("documents", f"documents[{i}]", d.name, d.source, d.unverified)
            for i, d in enumerate(service.documents)
        ]
    return facts


def agency_facts(agency: Agency, index: int) -> list[KeyFact]:
    """An agency's hotline, the key fact of agencies.yml."""
    if not agency.hotline:
        return []
    area = f" ({agency.hotline_area})" if agency.hotline_area else ""
    return [
        KeyFact("hotline", f"agencies[{index}]", f"{agency.code} hotline {agency.hotline}{area}",
                agency.source, agency.unverified)
    ]


def _amount(amount: float | None) -> str:
    return "by rule" if amount is None else f"{amount:g} baht"


def _channel_summary(name: str, phone: str | None, has_hours: bool) -> str:
    parts = [name]
    if has_hours:
        parts.append("opening hours")
    if phone:
        parts.append(f"phone {phone}")
    return ", ".join(parts)
