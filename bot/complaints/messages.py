"""The Thai messages pushed to a complaint's reporter, and the status names the citizen sees.

Polite and neutral (no ครับ/ค่ะ: the bot has no gender), dates in the Buddhist era as Thai
officialdom writes them ("วันจันทร์ที่ 6 ก.ค. 2569 เวลา 16:30 น."). Officers' words are passed
through `plain_value` (no control or bidirectional-override characters), like every echoed value.
"""

from __future__ import annotations

import datetime as dt

from bot.answers.render import plain_value
from bot.answers.reply import Reply
from bot.catalog.schema import Agency
from bot.complaints.model import Complaint
from bot.settings import TIMEZONE
from bot.text import format_thai_date, format_time

STATUS_LABELS: dict[str, str] = {
    "received": "ส่งถึงหน่วยงานแล้ว รอหน่วยงานตอบรับ",
    "acknowledged": "หน่วยงานตอบรับเรื่องแล้ว",
    "in_progress": "กำลังดำเนินการ",
    "resolved": "ดำเนินการแล้วเสร็จ",
    "closed": "ปิดเรื่องแล้ว",
    "reopened": "เปิดเรื่องอีกครั้ง รอหน่วยงานตอบรับ",
}


def thai_datetime(moment: dt.datetime) -> str:
    local = moment.astimezone(TIMEZONE)
    return f"{format_thai_date(local.date(), short=True, weekday=True)} เวลา {format_time(local.time())}"


def _follow_up(complaint: Complaint) -> str:
    return f'ติดตามสถานะ พิมพ์ "เรื่องร้องเรียน {complaint.tracking_number} ถึงไหนแล้ว"'


def acknowledged(complaint: Complaint, agency: Agency) -> Reply:
    return Reply(
        f"📨 เรื่องร้องเรียนเลขที่ {complaint.tracking_number} ได้รับการตอบรับแล้ว\n"
        f"{agency.name} รับเรื่องไว้ดำเนินการ และจะแจ้งผลภายใน{thai_datetime(complaint.resolve_due_at)}\n"
        f"{_follow_up(complaint)}"
    )


def replied(complaint: Complaint, agency: Agency, text: str) -> Reply:
    return Reply(
        f"💬 ข้อความจาก{agency.name} เรื่องร้องเรียนเลขที่ {complaint.tracking_number}\n"
        f"{plain_value(text)}\n"
        f"{_follow_up(complaint)}"
    )


def transferred(complaint: Complaint, agency: Agency, *, escalated: bool) -> Reply:
    why = (
        "เนื่องจากหน่วยงานเดิมดำเนินการไม่ทันกำหนด จึงส่งต่อให้"
        if escalated
        else "ได้ส่งต่อไปยัง"
    )
    return Reply(
        f"🔁 เรื่องร้องเรียนเลขที่ {complaint.tracking_number} {why}{agency.name} ซึ่งรับผิดชอบเรื่องนี้\n"
        f"ใช้เลขที่เรื่องเดิมติดตามได้ตามปกติ หน่วยงานจะตอบรับภายใน{thai_datetime(complaint.acknowledge_due_at)}"
        f" และแจ้งผลภายใน{thai_datetime(complaint.resolve_due_at)}\n"
        f"{_follow_up(complaint)}"
    )


def resolved(complaint: Complaint, agency: Agency, text: str) -> Reply:
    # The way back in that works from a push: the status answer carries the "not fixed" button.
    again = (
        f"\nหากปัญหายังไม่ได้รับการแก้ไข พิมพ์ \"เรื่องร้องเรียน {complaint.tracking_number} ถึงไหนแล้ว\" แล้วกดปุ่ม"
        " \"ยังไม่ได้รับการแก้ไข\" เพื่อขอเปิดเรื่องอีกครั้งพร้อมเหตุผล (ได้ 1 ครั้ง)"
        if complaint.reopen_count == 0
        else ""
    )
    return Reply(
        f"✅ เรื่องร้องเรียนเลขที่ {complaint.tracking_number} ดำเนินการแล้วเสร็จ\n"
        f"ผลการดำเนินการจาก{agency.name}: {plain_value(text)}{again}"
    )
