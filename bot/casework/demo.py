"""Demo requests for trying the status lookup on embedded defaults (`make run`).

Clearly marked (office "ข้อมูลตัวอย่าง", audit actor "demo"), loaded only into an empty
embedded database, or when asked (`sla-bot demo load`). Times are relative to now, so the
states hold whenever it runs; the numbers carry the current Buddhist year. The README lists
them as `NUMBER · digits · state`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from bot.casework.registry import Registry

ACTOR = "demo"
OFFICE = "ข้อมูลตัวอย่าง (สาธิต) "


@dataclass(frozen=True)
class DemoRequest:
    agency: str
    service_id: str
    office: str
    digits: str
    state: str  # what the README promises: on time, waiting, late, completed
    days_ago: float
    # (days after filing, step index or None, status or None, note): the agency's changes
    changes: tuple[tuple[float, int | None, str | None, str | None], ...] = ()


DEMO: tuple[DemoRequest, ...] = (
    DemoRequest("DLT", "vehicle_tax_renewal", "สำนักงานขนส่งจังหวัดนนทบุรี", "1234", "late", 3,
                ((0.01, 1, "in_progress", None),)),
    DemoRequest("DCA", "passport", "สำนักงานหนังสือเดินทาง แจ้งวัฒนะ", "5678", "on time", 0.05,
                ((0.01, 4, "in_progress", "หนังสือเดินทางอยู่ระหว่างจัดส่งทางไปรษณีย์"),)),
    DemoRequest("LAO", "food_shop_permit", "สำนักงานเขตจตุจักร", "2468", "waiting for the citizen", 10,
                ((2, 1, "in_progress", None),
                 (4, None, "waiting_for_citizen",
                  "กรุณานำใบรับรองการผ่านการอบรมสุขาภิบาลอาหารมายื่นเพิ่มเติมที่ฝ่ายสิ่งแวดล้อมและสุขาภิบาล"))),
    DemoRequest("LAO", "food_shop_permit", "เทศบาลนครนนทบุรี", "1357", "late", 45,
                ((2, 1, "in_progress", None),)),
    DemoRequest("BORA", "change_of_address", "สำนักทะเบียนอำเภอเมืองนนทบุรี", "9876", "completed", 2,
                ((0.01, 3, "approved", None), (0.02, None, "completed", None))),
    DemoRequest("RTP", "criminal_record_check", "ศูนย์บริการออกหนังสือรับรองความประพฤติ", "4321", "on time", 2,
                ((0.02, 2, "in_progress", None),)),
)


def demo_loaded(registry: Registry) -> bool:
    return any(entry.actor == ACTOR for entry in registry.audit_trail(limit=20))


def load_demo(registry: Registry) -> list[tuple[str, str, str]]:
    """File the demo requests (once); (number, digits, state) for each, in README order."""
    now = registry.now()
    loaded = []
    for demo in DEMO:
        filed = now - dt.timedelta(days=demo.days_ago)
        request = registry.create_request(
            demo.agency, demo.service_id, OFFICE + demo.office, demo.digits, filed, actor=ACTOR
        )
        number = request.tracking_number
        for after_days, step, status, note in demo.changes:
            at = filed + dt.timedelta(days=after_days)
            if step is not None:
                registry.move_to_step(number, demo.agency, step, note if status is None else None, actor=ACTOR, at=at)
            if status is not None:
                registry.set_status(number, demo.agency, status, note, actor=ACTOR, at=at)
        loaded.append((number, demo.digits, demo.state))
    return loaded
