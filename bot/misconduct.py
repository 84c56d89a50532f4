"""Whether a complaint reports bribery, extortion, corruption or abuse of power.

Such reports go to the agency's `misconduct_channel` (ป.ป.ท., 1206) as well as, or instead of,
the office complained about. Standard library only (`bot.text`), so the actions, the gateway and
the complaint routing can all use it.

Matching runs on normalised text without spaces, so "ใต้ โต๊ะ" and "ค่าน้ำร้อน น้ำชา" count.
Not counted on purpose: overcharging or a missing receipt alone (a fee mistake or a system
fault as often as graft), "ขอเงินคืน"/"เรียกเงินคืน" (a refund), "รับเงิน" (a citizen receiving
an allowance).
"""

from __future__ import annotations

from bot.text import normalize

# Words that are reports of misconduct wherever they appear in a complaint.
MISCONDUCT_WORDS = (
    "สินบน", "ใต้โต๊ะ", "น้ำร้อนน้ำชา", "ค่าน้ำชา", "เรียกเงิน", "เรียกรับเงิน", "เรียกรับผลประโยชน์",
    "รีดไถ", "ไถเงิน", "ส่วย", "ทุจริต", "คอร์รัปชัน", "คอร์รัปชั่น", "คอรัปชั่น", "คอรัปชัน",
    "เงินพิเศษ", "ค่าเร่ง", "เงินเคลียร์", "ค่าเคลียร์", "แป๊ะเจี๊ยะ", "นอกใบเสร็จ", "ใช้อำนาจ",
    "ขู่", "กรรโชก", "กดดันให้จ่าย", "ค่าอำนวยความสะดวก", "อำนาจโดยมิชอบ", "corruption", "corrupt", "bribe",
    "bribery",
)
# Paid more than the fee *and* without a receipt: money that goes to the officer.
EXTRA_MONEY = ("จ่ายเพิ่ม", "เงินเพิ่ม", "เก็บเพิ่ม", "ค่าดำเนินการเพิ่ม")
NO_RECEIPT = ("ไม่มีใบเสร็จ", "ไม่ออกใบเสร็จ", "ไม่ให้ใบเสร็จ")
# Phrases that contain a word above but are not misconduct.
NOT_MISCONDUCT = ("เรียกเงินคืน",)


def _norm(words: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(normalize(w, drop_spaces=True).text for w in words)


_WORDS, _EXTRA, _NO_RECEIPT, _NOT = map(_norm, (MISCONDUCT_WORDS, EXTRA_MONEY, NO_RECEIPT, NOT_MISCONDUCT))


def mentions_misconduct(text: str) -> bool:
    """Whether `text` reports bribery, extortion, corruption or abuse of power by an official."""
    hay = normalize(text, drop_spaces=True).text
    for phrase in _NOT:
        hay = hay.replace(phrase, " ")
    if any(word in hay for word in _WORDS):
        return True
    return any(w in hay for w in _EXTRA) and any(w in hay for w in _NO_RECEIPT)
