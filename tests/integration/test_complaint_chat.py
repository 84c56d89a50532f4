# The LINE and Telegram modules' fixtures are imported, so test parameters shadow them (F811).
# ruff: noqa: F811
"""Filing a complaint in chat, end to end: the real Rasa server and action server, a LINE user
through the gateway process and a Telegram chat through the channel in-process, each sending a
location and a photo through the fake platform servers; the complaint is read back from the
database the stack writes, and its reporter looks it up.
"""

from __future__ import annotations

import datetime as dt
import re
import time

import pytest
import sqlalchemy as sa

from bot.complaints.photos import PhotoStore
from bot.db import make_engine
from bot.db.models import ComplaintPhotoRow, ComplaintRow
from bot.runtime.stack import Stack
from tests.fakes.line_api import media_event, postback_event
from tests.fakes.telegram_api import location_update, photo_update
from tests.integration.test_line import LineUser, line_env, line_fake, line_stack, line_url  # noqa: F401
from tests.integration.test_telegram import Harness, telegram_fake  # noqa: F401

pytestmark = pytest.mark.filterwarnings("ignore:.*retry_after.*:DeprecationWarning")

JPEG = b"\xff\xd8\xff\xe0" + b"\x00\x10JFIF" + b"0" * 256
NUMBER = re.compile(r"CMP-\d{4}-\d{6}")


def complaint(stack: Stack, number: str) -> tuple[ComplaintRow, list[ComplaintPhotoRow], int]:
    """The complaint, its photos, and how many complaints its reporter filed."""
    engine = make_engine(stack.settings.database)
    try:
        with engine.connect() as connection:
            row = connection.execute(sa.select(ComplaintRow).where(ComplaintRow.tracking_number == number)).one()
            photos = connection.execute(
                sa.select(ComplaintPhotoRow).where(ComplaintPhotoRow.complaint_id == row.id)
            ).all()
            mine = sa.select(sa.func.count()).select_from(ComplaintRow)
            count = connection.execute(mine.where(ComplaintRow.reporter_hash == row.reporter_hash)).scalar_one()
    finally:
        engine.dispose()
    return row, photos, count


# -- LINE, through the gateway process ---------------------------------------------------------


def quick_replies(message: dict) -> dict[str, str]:
    return {i["action"]["label"]: i["action"]["data"] for i in message.get("quickReply", {}).get("items", [])}


def press(user: LineUser, messages: list[dict], label: str) -> list[dict]:
    data = next(quick_replies(m)[label] for m in messages if label in quick_replies(m))
    return user.send(postback_event(user.id, data, user.fake.issue_reply_token(user.id)))


def test_a_line_user_files_a_complaint_with_a_location_and_a_photo(line_fake, line_url, line_stack):
    user = LineUser(line_fake, line_url)
    asked = user.say("อยากร้องเรียนเจ้าหน้าที่ขนส่งพูดจาไม่สุภาพ")
    assert "เกิดอะไรขึ้น" in asked[-1]["text"] and "กรมการขนส่งทางบก" in asked[-1]["text"]
    asked = user.say("เจ้าหน้าที่ตะคอกใส่ตอนยื่นต่อภาษีรถ ไม่ยอมอธิบายว่าเอกสารขาดอะไร")
    assert "Location" in asked[-1]["text"]
    location = media_event(
        user.id, "location", user.fake.issue_reply_token(user.id),
        title="สำนักงานขนส่งจังหวัดนนทบุรี", address="ถนนรัตนาธิเบศร์", latitude=13.8621, longitude=100.5144,
    )
    asked = user.send(location)
    assert "รูปถ่าย" in asked[-1]["text"]
    line_fake.add_content("880001", JPEG)
    asked = user.send(media_event(user.id, "image", user.fake.issue_reply_token(user.id), message_id="880001"))
    assert "ได้รับรูปแล้ว 1 รูป" in asked[-1]["text"]
    asked = press(user, asked, "เสร็จแล้ว")
    assert "1 ปี" in asked[-1]["text"], "the consent line says how long a phone number is kept"
    summary = press(user, asked, "ไม่ระบุตัวตน")
    assert "สำนักงานขนส่งจังหวัดนนทบุรี" in summary[-1]["text"] and "รูปถ่าย: 1 รูป" in summary[-1]["text"]
    filed = press(user, summary, "ยืนยัน")
    text = "\n".join(m["text"] for m in filed)
    number = NUMBER.search(text).group(0)
    buddhist_year = str(dt.date.today().year + 543)
    assert "กรมการขนส่งทางบก" in text and buddhist_year in text.split("แจ้งผลภายใน")[1]
    row, photos, count = complaint(line_stack, number)
    assert (row.agency_code, row.reporter_channel, row.latitude, row.longitude) == ("DLT", "line", 13.8621, 100.5144)
    assert row.place == "สำนักงานขนส่งจังหวัดนนทบุรี ถนนรัตนาธิเบศร์" and row.contact_sealed is None
    [photo] = photos
    assert PhotoStore(line_stack.settings.data_dir / "photos").read(photo.photo_id) == JPEG
    again = press(user, summary, "ยืนยัน")  # a double tap on the old summary
    assert not NUMBER.search("\n".join(m["text"] for m in again))
    assert complaint(line_stack, number)[2] == 1, "one complaint however often it is confirmed"
    status = "\n".join(m["text"] for m in user.say(f"เรื่องร้องเรียน {number} ถึงไหนแล้ว"))
    assert number in status and "ส่งถึงหน่วยงานแล้ว" in status
    stranger = LineUser(line_fake, line_url)
    asked = "\n".join(m["text"] for m in stranger.say(f"เรื่องร้องเรียน {number} ถึงไหนแล้ว"))
    assert "เลข 4 ตัวท้าย" in asked, "another chat must prove the phone's digits (an anonymous complaint has none)"
    assert "ไม่สามารถแสดงสถานะ" in stranger.text("1234")


# -- Telegram, the channel in-process against the stack's Rasa -------------------------------------


def buttons(message: dict) -> list[str]:
    return [b["text"] for row in message.get("reply_markup", {}).get("inline_keyboard", []) for b in row]


async def test_a_telegram_chat_files_a_complaint_with_a_location_and_a_photo(stack: Stack, telegram_fake):
    async with Harness(stack, telegram_fake) as harness:
        harness.channel.photos = PhotoStore(stack.settings.data_dir / "photos")  # the action server's store
        citizen = harness.citizen()
        ids = iter(range(int(time.time() * 1000) % 10**9, 10**10))
        sent = await citizen.say("ร้องเรียนหน่อยค่ะ")
        assert "ไม่ทราบหน่วยงาน" in buttons(sent[-1])
        sent = await citizen.press(sent[-1], "ไม่ทราบหน่วยงาน")
        assert "เกิดอะไรขึ้น" in sent[-1]["text"]
        sent = await citizen.say("ไฟถนนหน้าปากซอยดับมาสองสัปดาห์ กลางคืนมืดมาก")
        sent = await citizen.send(location_update(next(ids), citizen.chat_id, 13.7367, 100.5232))
        assert "รูปถ่าย" in sent[-1]["text"]
        telegram_fake.add_file("AgAC-streetlight", JPEG)
        sent = await citizen.send(photo_update(next(ids), citizen.chat_id, "AgAC-streetlight", file_size=len(JPEG)))
        assert "ได้รับรูปแล้ว 1 รูป" in sent[-1]["text"]
        sent = await citizen.press(sent[-1], "เสร็จแล้ว")
        sent = await citizen.press(sent[-1], "ให้เบอร์โทรติดต่อกลับ")
        assert "1 ปี" in sent[-1]["text"]
        summary = await citizen.say("081-234-5678")
        assert "08x-xxx-xx78" in summary[-1]["text"] and "13.73670, 100.52320" in summary[-1]["text"]
        filed = await citizen.press(summary[-1], "ยืนยัน")
        number = NUMBER.search("\n".join(m["text"] for m in filed)).group(0)
        row, photos, count = complaint(stack, number)
        assert row.reporter_channel == "telegram" and (row.latitude, row.longitude) == (13.7367, 100.5232)
        assert row.agency_code == "OPM" and row.contact_sealed and len(photos) == 1 and count == 1
