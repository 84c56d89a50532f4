"""Who receives a complaint: a pure function of the catalog and what the complaint is about.

The rules, in order (the first that applies decides):

1. An agency the citizen named (the `agency` entity, a catalog code) receives it.
2. Else, when the complaint is about a step of a service and that step's responsible unit is
   a unit of one agency taking part in the service (its owner or a partner), that agency. The
   unit is matched against the agencies' names and aliases, but only those of the service's
   own agencies, and only when exactly one matches: a unit such as "งานทะเบียนและภาษีรถ" must
   not send a vehicle-tax complaint to the civil registry, and "นายทะเบียนอำเภอหรือนายทะเบียน
   ท้องถิ่น" names two agencies, so it falls through to the next rule.
3. Else the service's owning agency.
4. Else nothing routable was named: the central public service centre (OPM, 1111) triages it.

A report of bribery or abuse of power (`misconduct`) is about the agency the rules above find
(or, when none, about no one in particular), but goes to that agency's `misconduct_channel`
(PACC for every agency) instead, and the route says so: the reporter's contact is withheld
from the agency complained about (`about_agency`). An agency without a misconduct channel
(PACC itself) has its misconduct reports triaged centrally.

Each route carries its reason, in Thai and English, stored with the complaint and shown to
officers. `bot.misconduct.mentions_misconduct` spots the Thai words for bribery and abuse of
power, for the chat to propose the misconduct channel (the caller decides: it passes the flag).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Optional

from bot.catalog.loader import Catalog
from bot.catalog.schema import Agency, Service
from bot.text import normalize

Rule = Literal["named_agency", "step_unit", "service", "central"]



@dataclass(frozen=True)
class Subject:
    """What a complaint is about, as far as the citizen said: each part optional."""

    service_id: Optional[str] = None
    agency_code: Optional[str] = None
    step_index: Optional[int] = None


@dataclass(frozen=True)
class Route:
    """The agency that receives the complaint, and why.

    `about_agency` is the agency the complaint is about (None when nothing routable was named);
    for a misconduct report it differs from `agency_code` and never sees the reporter's contact.
    `rule` is the rule that found `about_agency` (see the module docstring)."""

    agency_code: str
    about_agency: Optional[str]
    rule: Rule
    misconduct: bool
    reason: str


def route(catalog: Catalog, subject: Subject, misconduct: bool = False) -> Route:
    """The route for a complaint about `subject` (rules in the module docstring). Pure."""
    about, rule, why = _about(catalog, subject)
    if not misconduct:
        if about is None:
            central = catalog.central
            return Route(central.code, None, "central", False, _central_reason(central, why))
        return Route(about.code, about.code, rule, False, why)
    accused = about or catalog.central
    channel = catalog.agency(accused.misconduct_channel) if accused.misconduct_channel else None
    if channel is None or channel.code == accused.code:
        channel = catalog.central
    reason = (
        f"{why}; แจ้งเบาะแสการทุจริตหรือใช้อำนาจโดยมิชอบ จึงส่ง{channel.name} ซึ่งรับเรื่องทุจริตของ"
        f"{accused.name} และไม่เปิดเผยข้อมูลติดต่อผู้ร้องแก่หน่วยงานที่ถูกร้อง"
        f" / a report of bribery or abuse of power: sent to {channel.name_en}, which receives misconduct"
        f" reports about {accused.name_en}; the reporter's contact is withheld from the agency complained about"
    )
    return Route(channel.code, about.code if about else None, rule, True, reason)


def step_agency(catalog: Catalog, service: Service, step_index: int) -> Optional[Agency]:
    """The one agency of `service` (owner or partner) whose name or alias the step's unit names, else None."""
    if not 0 <= step_index < len(service.steps):
        return None
    unit = normalize(service.steps[step_index].unit, drop_spaces=True).text
    found = []
    for code in dict.fromkeys((service.agency, *service.partner_agencies)):
        agency = catalog.agency(code)
        if agency is None:
            continue
        names = (agency.name, *agency.aliases)
        if any(_folded(name) and _folded(name) in unit for name in names):
            found.append(agency)
    return found[0] if len(found) == 1 else None


def _about(catalog: Catalog, subject: Subject) -> tuple[Optional[Agency], Rule, str]:
    """The agency the complaint is about, the rule that found it and why (Thai / English)."""
    named = catalog.agency(subject.agency_code) if subject.agency_code else None
    if named is not None:
        return named, "named_agency", f"ผู้ร้องระบุหน่วยงาน {named.name} / the reporter named {named.name_en}"
    service = catalog.service(subject.service_id) if subject.service_id else None
    if service is None:
        return None, "central", "ไม่ระบุหน่วยงานหรือบริการที่ส่งต่อได้ / no agency or service named"
    if subject.step_index is not None:
        agency = step_agency(catalog, service, subject.step_index)
        if agency is not None:
            step = service.steps[subject.step_index]
            number = subject.step_index + 1
            return agency, "step_unit", (
                f"ขั้นตอนที่ {number} ของ{service.name} ({step.title}) เป็นงานของ{step.unit} สังกัด{agency.name}"
                f" / step {number} of {service.name_en} is done by a unit of {agency.name_en}"
            )
    owner = catalog.agency_of(service)
    return owner, "service", (
        f"{service.name} เป็นบริการของ{owner.name} / {service.name_en} is provided by {owner.name_en}"
    )


def _central_reason(central: Agency, why: str) -> str:
    hotline = f" ({central.hotline})" if central.hotline else ""
    return (
        f"{why}; ส่ง{central.name}{hotline} คัดแยกและส่งต่อ"
        f" / nothing routable was named: central triage at {central.name_en}{hotline}"
    )


def _folded(text: str) -> str:
    return normalize(text, drop_spaces=True).text
