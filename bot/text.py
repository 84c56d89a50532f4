"""Thai text helpers shared by the NLU components (Rasa env) and the answers (app env).

Standard library only. Normalisation keeps a map back to the original characters, so the
tokenizer and the entity extractors can report offsets in the text the citizen typed.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from dataclasses import dataclass

THAI_DIGITS = "๐๑๒๓๔๕๖๗๘๙"
_DIGIT_TABLE = str.maketrans(THAI_DIGITS, "0123456789")
_ZERO_WIDTH = "\u200b\u200c\u200d\u2060\ufeff\u00ad"
_TONE_AND_UPPER_VOWELS = set("\u0e31\u0e34\u0e35\u0e36\u0e37\u0e38\u0e39\u0e47\u0e48\u0e49\u0e4a\u0e4b\u0e4c\u0e4d")
_SARA_E = "\u0e40"
_SARA_AE = "\u0e41"
_NIKHAHIT = "\u0e4d"
_SARA_AA = "\u0e32"
_SARA_AM = "\u0e33"
_TONE_MARKS = "\u0e48\u0e49\u0e4a\u0e4b"  # mai ek, mai tho, mai tri, mai chattawa
_THANTHAKHAT = "\u0e4c"
# Above vowels (incl. nikhahit and maitaikhu) and below vowels, as pythainlp groups them.
_ABOVE_BELOW_VOWELS = "\u0e31\u0e34\u0e35\u0e36\u0e37\u0e4d\u0e47\u0e38\u0e39"
_FOLLOW_VOWELS = "\u0e30\u0e32\u0e33\u0e45"  # sara a, sara aa, sara am, lakkhangyao
# Marks typed in the wrong order, repaired in this order (pythainlp.util.reorder_vowels),
# after zero-width characters are dropped (they must not hide a wrong order). Each rule is a
# pattern and how to rewrite a match.
_REORDER_RULES = (
    (re.compile(f"[{_ZERO_WIDTH}]+"), lambda m: ""),
    # tone marks / thanthakhat before an above or below vowel: ย้ี -> ยี้, ธ์ุ -> ธุ์
    (
        re.compile(f"([{_TONE_MARKS}{_THANTHAKHAT}]+)([{_ABOVE_BELOW_VOWELS}]+)"),
        lambda m: m[2] + m[1],
    ),
    # nikhahit, tone marks, sara aa -> tone marks, sara am: กํ้า -> ก้ำ
    (re.compile(f"{_NIKHAHIT}([{_TONE_MARKS}]*){_SARA_AA}"), lambda m: m[1] + _SARA_AM),
    # a follow vowel before the tone mark: ยา้ย -> ย้าย, กำ้ -> ก้ำ
    (re.compile(f"([{_FOLLOW_VOWELS}]+)([{_TONE_MARKS}]+)"), lambda m: m[2] + m[1]),
    # lakkhangyao typed for sara aa, except in ฤๅ and ฦๅ
    (re.compile("(?<=[^\u0e24\u0e26])\u0e45"), lambda m: _SARA_AA),
)
# Finds every text some rule rewrites (and a few more), cheaply: most text has none.
_MAY_NEED_REORDER = re.compile(
    f"[{_TONE_MARKS}{_THANTHAKHAT}][{_ABOVE_BELOW_VOWELS}]|[{_FOLLOW_VOWELS}][{_TONE_MARKS}]"
    f"|[{_NIKHAHIT}\u0e45{_ZERO_WIDTH}]"
)

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
    sara ae and nikhahit+sara aa typed for sara am, puts tone marks and vowels typed in the
    wrong order back in order (as pythainlp's `reorder_vowels` does: ย้ี -> ยี้, ยา้ย -> ย้าย),
    collapses repeated tone marks and upper vowels and letters stretched three times or more
    (ช่ายยย), and lower-cases. With `drop_spaces`, whitespace and dots go too (บัตร ปชช. ==
    บัตรปชช), which is what alias matching wants.

    Characters that were reordered all map to the span of the whole group they came from,
    so the span of any word that contains them covers exactly its original characters.
    """
    text = unicodedata.normalize("NFC", text)
    reordered = _reorder_marks(text)
    if reordered is not None:
        text, source_starts, source_ends = reordered
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
        if drop_spaces and (ch.isspace() or ch == "."):
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
    if reordered is not None:  # offsets into the reordered text -> offsets into `text`
        source_ends.insert(0, 0)  # so that source_ends[e] is the end of character e - 1
        return Normalized(
            "".join(chars),
            tuple(map(source_starts.__getitem__, starts)),
            tuple(map(source_ends.__getitem__, ends)),
        )
    return Normalized("".join(chars), tuple(starts), tuple(ends))


def _reorder_marks(text: str) -> tuple[str, list[int], list[int]] | None:
    """`text` without zero-width characters and with its marks in order, and the [start, end)
    in `text` of each of its characters; None if there is nothing to do (the common case,
    told by one regex search). All the characters a rule outputs map to the whole match.
    """
    if _MAY_NEED_REORDER.search(text) is None:
        return None
    starts = list(range(len(text)))
    ends = list(range(1, len(text) + 1))
    for pattern, rewrite in _REORDER_RULES:
        pieces: list[str] = []
        new_starts: list[int] = []
        new_ends: list[int] = []
        last = 0
        for match in pattern.finditer(text):
            begin, end = match.span()
            out = rewrite(match)
            pieces += (text[last:begin], out)
            new_starts += starts[last:begin]
            new_starts += [starts[begin]] * len(out)
            new_ends += ends[last:begin]
            new_ends += [ends[end - 1]] * len(out)
            last = end
        if last:
            pieces.append(text[last:])
            text = "".join(pieces)
            starts = new_starts + starts[last:]
            ends = new_ends + ends[last:]
    return text, starts, ends


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
