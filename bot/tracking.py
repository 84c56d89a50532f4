"""Tracking numbers: CODE-YYYY-NNNNNN (see the interface contract).

CODE is 2-6 ASCII letters (an agency code, CMP for complaints), YYYY the Buddhist-era year
of filing and NNNNNN six digits. Citizens type them in every shape: lower case, Thai digits,
spaces or nothing between the parts. Standard library only (used in both environments).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bot.text import thai_digits_to_arabic

COMPLAINT_CODE = "CMP"
_DIGIT = r"[0-9๐-๙]"
_SEP = r"[\s\-_/.:#]*"
_PATTERN = re.compile(
    rf"(?<![A-Za-z])([A-Za-z]{{2,6}}){_SEP}({_DIGIT}{{4}}){_SEP}({_DIGIT}{{6}})(?!{_DIGIT})"
)


@dataclass(frozen=True)
class TrackingMatch:
    start: int
    end: int
    value: str


def find_tracking_numbers(text: str) -> list[TrackingMatch]:
    """Every tracking number in `text`, with its span in `text` and its canonical value."""
    found = []
    for m in _PATTERN.finditer(text):
        code, year, serial = m.groups()
        value = f"{code.upper()}-{thai_digits_to_arabic(year)}-{thai_digits_to_arabic(serial)}"
        found.append(TrackingMatch(m.start(), m.end(), value))
    return found


def normalize_tracking_number(text: str) -> str | None:
    """The canonical form of the one tracking number `text` holds, or None."""
    matches = find_tracking_numbers(text.strip())
    if len(matches) != 1:
        return None
    return matches[0].value
