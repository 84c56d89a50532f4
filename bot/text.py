"""Thai text helpers shared by the NLU components (Rasa env) and the answers (app env).

Standard library only. Normalisation keeps a map back to the original characters, so the
tokenizer and the entity extractors can report offsets in the text the citizen typed.
"""

from __future__ import annotations

import datetime as dt
import unicodedata
from dataclasses import dataclass

THAI_DIGITS = "๐๑๒๓๔๕๖๗๘๙"
_DIGIT_TABLE = str.maketrans(THAI_DIGITS, "0123456789")
_ZERO_WIDTH = {"\u200b", "\u200c", "\u200d", "\u2060", "\ufeff", "\u00ad"}
_TONE_AND_UPPER_VOWELS = set("\u0e31\u0e34\u0e35\u0e36\u0e37\u0e38\u0e39\u0e47\u0e48\u0e49\u0e4a\u0e4b\u0e4c\u0e4d")
_SARA_E = "\u0e40"
_SARA_AE = "\u0e41"
_NIKHAHIT = "\u0e4d"
_SARA_AA = "\u0e32"
_SARA_AM = "\u0e33"

THAI_MONTHS = (
    "มกราคม", "กุมภาพันธ์", "มีนาคม", "เมษายน", "พฤษภาคม", "มิถุนายน",
    "กรกฎาคม", "สิงหาคม", "กันยายน", "ตุลาคม", "พฤศจิกายน", "ธันวาคม",
)
THAI_MONTHS_SHORT = (
    "ม.ค.", "ก.พ.", "มี.ค.", "เม.ย.", "พ.ค.", "มิ.ย.",
    "ก.ค.", "ส.ค.", "ก.ย.", "ต.ค.", "พ.ย.", "ธ.ค.",
)
THAI_WEEKDAYS = ("จันทร์", "อังคาร", "พุธ", "พฤหัสบดี", "ศุกร์", "เสาร์", "อาทิตย์")
BUDDHIST_ERA_OFFSET = 543


@dataclass(frozen=True)
class Normalized:
    """Normalised text and, for each of its characters, the [start, end) it came from."""

    text: str
    starts: tuple[int, ...]
    ends: tuple[int, ...]

    def span(self, start: int, end: int) -> tuple[int, int]:
        """Map a [start, end) span of the normalised text back to the original text."""
        return self.starts[start], self.ends[end - 1]


def normalize(text: str, *, drop_spaces: bool = False, lower: bool = True) -> Normalized:
    """Normalise Thai text the way citizens' typing varies, remembering original offsets.

    Removes zero-width characters, maps Thai digits to Arabic, repairs two sara e typed for
    sara ae and nikhahit+sara aa typed for sara am, collapses repeated tone marks and upper
    vowels and letters stretched three times or more (ช่ายยย), and lower-cases. With `drop_spaces`, whitespace and dots go too (บัตร ปชช. ==
    บัตรปชช), which is what alias matching wants.
    """
    text = unicodedata.normalize("NFC", text)
    chars: list[str] = []
    starts: list[int] = []
    ends: list[int] = []

    def keep(ch: str, start: int, end: int) -> None:
        chars.append(ch.lower() if lower else ch)
        starts.append(start)
        ends.append(end)

    i = 0
    while i < len(text):
        ch = text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        if ch in _ZERO_WIDTH or (drop_spaces and (ch.isspace() or ch == ".")):
            i += 1
            continue
        if ch == _SARA_E and nxt == _SARA_E:
            keep(_SARA_AE, i, i + 2)
            i += 2
            continue
        if ch == _NIKHAHIT and nxt == _SARA_AA:
            keep(_SARA_AM, i, i + 2)
            i += 2
            continue
        if ch in _TONE_AND_UPPER_VOWELS and chars and chars[-1] == ch:
            ends[-1] = i + 1
            i += 1
            continue
        if ch.isalpha() and text[i + 1 : i + 3] == ch * 2:  # chat elongation: มากกกก -> มาก
            run_end = i
            while run_end < len(text) and text[run_end] == ch:
                run_end += 1
            keep(ch, i, run_end)
            i = run_end
            continue
        keep(ch.translate(_DIGIT_TABLE), i, i + 1)
        i += 1
    return Normalized("".join(chars), tuple(starts), tuple(ends))


def thai_digits_to_arabic(text: str) -> str:
    return text.translate(_DIGIT_TABLE)


def format_baht(amount: float) -> str:
    """1000 -> '1,000 บาท'; 0.5 -> '0.50 บาท'; 0 -> 'ไม่เสียค่าธรรมเนียม'."""
    if amount == 0:
        return "ไม่เสียค่าธรรมเนียม"
    if float(amount).is_integer():
        return f"{int(amount):,} บาท"
    return f"{amount:,.2f} บาท"


def buddhist_year(date: dt.date) -> int:
    return date.year + BUDDHIST_ERA_OFFSET


def format_thai_date(date: dt.date, *, short: bool = False, weekday: bool = False) -> str:
    """'25 พฤศจิกายน 2569', short '25 พ.ย. 2569', with weekday 'วันพุธที่ 25 พฤศจิกายน 2569'."""
    months = THAI_MONTHS_SHORT if short else THAI_MONTHS
    text = f"{date.day} {months[date.month - 1]} {buddhist_year(date)}"
    if weekday:
        return f"วัน{THAI_WEEKDAYS[date.weekday()]}ที่ {text}"
    return text


def format_time(value: dt.time) -> str:
    """'08:30 น.' as Thai officialdom writes times."""
    return f"{value:%H:%M} น."


def format_number(value: float) -> str:
    """3 -> '3', 1.5 -> '1.5', 1200 -> '1,200'."""
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.2f}".rstrip("0")
