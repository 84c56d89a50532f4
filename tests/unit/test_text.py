import datetime as dt
import re

import pytest

from bot.catalog.loader import load_catalog
from bot.catalog.matching import ServiceMatcher
from bot.settings import PROJECT_ROOT
from bot.text import format_baht, format_thai_date, normalize


def test_normalize_maps_back_to_original_offsets():
    text = "บัตร ปชช. ๑๒๓"
    norm = normalize(text, drop_spaces=True)
    assert norm.text == "บัตรปชช123"
    start = norm.text.index("123")
    assert text[slice(*norm.span(start, start + 3))] == "๑๒๓"


def test_normalize_repairs_common_thai_typing():
    assert normalize("เเก้ไข").text == "แก้ไข"  # two sara e typed for sara ae
    assert normalize("ทํา").text == "ทำ"  # nikhahit + sara aa
    assert normalize("ค่่า").text == "ค่า"  # doubled tone mark
    assert normalize("บัตร\u200bประชาชน").text == "บัตรประชาชน"
    assert normalize("PASSPORT").text == "passport"


def test_baht_and_buddhist_era_dates():
    assert format_baht(1000) == "1,000 บาท"
    assert format_baht(0.5) == "0.50 บาท"
    assert format_baht(0) == "ไม่เสียค่าธรรมเนียม"
    assert format_thai_date(dt.date(2026, 11, 25)) == "25 พฤศจิกายน 2569"
    assert format_thai_date(dt.date(2026, 11, 25), short=True, weekday=True) == "วันพุธที่ 25 พ.ย. 2569"


def test_chat_elongation_collapses_but_digits_stay():
    norm = normalize("ช่ายยย มากกกก 000123")
    assert norm.text == "ช่าย มาก 000123"
    start = norm.text.index("มาก")
    assert norm.span(start, start + 3) == (7, 13)


# --- tone marks and vowels typed in the wrong order -------------------------------------------

TONES = "\u0e48\u0e49\u0e4a\u0e4b"  # mai ek, mai tho, mai tri, mai chattawa
THANTHAKHAT = "\u0e4c"
ABOVE_BELOW_VOWELS = "\u0e31\u0e34\u0e35\u0e36\u0e37\u0e4d\u0e47\u0e38\u0e39"
FOLLOW_VOWELS = "\u0e30\u0e32\u0e33\u0e45"


def tone_before_vowel(text: str) -> str:
    """Type tone marks (and thanthakhat) before the above/below vowel: ยี้ -> ย้ี, ธุ์ -> ธ์ุ."""
    return re.sub(f"([{ABOVE_BELOW_VOWELS}]+)([{TONES}{THANTHAKHAT}]+)", r"\2\1", text)


def follow_vowel_before_tone(text: str) -> str:
    """Type the follow vowel before the tone mark: ย้าย -> ยา้ย, ค่ะ -> คะ่, ก้ำ -> กำ้."""
    return re.sub(f"([{TONES}]+)([{FOLLOW_VOWELS}])", r"\2\1", text)


def split_sara_am(text: str) -> str:
    """Type sara am as nikhahit, (tone marks,) sara aa: ทำ -> ทํา, ก้ำ -> กํ้า."""
    return re.sub(f"([{TONES}]*)\u0e33", "\u0e4d\\1\u0e32", text)


def wrong_order(text: str) -> str:
    """Every mark typed in the wrong order at once."""
    return follow_vowel_before_tone(tone_before_vowel(text))


SCRAMBLES = {
    "tone_before_vowel": tone_before_vowel,
    "follow_vowel_before_tone": follow_vowel_before_tone,
    "split_sara_am": split_sara_am,
    "wrong_order": wrong_order,
    "wrong_order_and_split_am": lambda text: split_sara_am(wrong_order(text)),
}


def spans(norm) -> list[tuple[int, int]]:
    return list(zip(norm.starts, norm.ends, strict=True))


@pytest.mark.parametrize(
    "typed, expected",
    [
        # tone mark (or thanthakhat) before an above or below vowel -> after it
        ("เบ\u0e49\u0e35ย", "เบี้ย"),  # mai tho before sara ii
        ("ท\u0e48\u0e35", "ที่"),  # mai ek before sara ii
        ("ต\u0e49\u0e31ง", "ตั้ง"),  # mai tho before mai han-akat
        ("ก\u0e4b\u0e4b\u0e34", "ก\u0e34\u0e4b"),  # a run of tone marks moves as one, then collapses
        ("ผ\u0e49\u0e39", "ผู้"),  # below vowel (NFC already reorders this one)
        ("พันธ\u0e4c\u0e38", "พันธุ์"),  # thanthakhat before sara u
        # nikhahit, tone mark, sara aa -> tone mark, sara am
        ("ก\u0e4d\u0e49\u0e32", "ก้ำ"),
        ("ก\u0e49\u0e4d\u0e32", "ก้ำ"),  # tone mark before the nikhahit too
        ("ท\u0e4d\u0e32", "ทำ"),  # no tone mark: the old rule, unchanged
        # follow vowel before the tone mark -> after it
        ("ยา\u0e49ย", "ย้าย"),
        ("คะ\u0e48", "ค่ะ"),
        ("กำ\u0e49", "ก้ำ"),
        ("จา\u0e49า", "จ้าา"),
        # lakkhangyao typed for sara aa, but not in ฤๅ / ฦๅ
        ("ก\u0e45ร", "การ"),
        ("ฤ\u0e45ษี", "ฤ\u0e45ษี"),
        ("ฦ\u0e45", "ฦ\u0e45"),
        ("\u0e45", "\u0e45"),
        # a zero-width character does not hide a wrong order
        ("ท\u0e48\u200b\u0e35", "ที่"),
        # text already in order is left alone
        ("ก้ำกึ่ง เบี้ยยังชีพ ย้ายที่อยู่ พันธุ์ ฤๅษี", "ก้ำกึ่ง เบี้ยยังชีพ ย้ายที่อยู่ พันธุ์ ฤๅษี"),
    ],
)
def test_normalize_reorders_marks_typed_in_the_wrong_order(typed, expected):
    assert normalize(typed).text == expected


def test_reordered_marks_map_to_the_span_of_the_whole_group():
    norm = normalize("ย\u0e49\u0e35ย")  # ย้ีย -> ยี้ย
    assert norm.text == "ยี้ย"
    assert spans(norm) == [(0, 1), (1, 3), (1, 3), (3, 4)]
    assert norm.span(1, 2) == (1, 3)  # either reordered character alone covers both originals
    assert norm.span(2, 3) == (1, 3)
    norm = normalize("ก\u0e4d\u0e49\u0e32ไร")  # กํ้าไร -> ก้ำไร: three characters become two
    assert norm.text == "ก้ำไร"
    assert spans(norm) == [(0, 1), (1, 4), (1, 4), (4, 5), (5, 6)]
    norm = normalize("ท\u0e48\u200b\u0e35")  # the zero-width character is inside the group
    assert spans(norm) == [(0, 1), (1, 4), (1, 4)]


def test_word_typed_in_the_wrong_order_maps_back_to_exactly_its_span():
    word = "เบี้ยยังชีพ"
    typed = "อยากสมัคร" + wrong_order(word) + "ให้แม่ค่ะ"
    for drop_spaces in (False, True):
        norm = normalize(typed, drop_spaces=drop_spaces)
        start = norm.text.index(word)
        assert typed[slice(*norm.span(start, start + len(word)))] == wrong_order(word)
    # and with everything else going on: Thai digits, elongation, a wrong order before and after
    typed = "ท" + "\u0e48\u0e35" + " ๑๒ ย" + "า\u0e49" + "ยยยย ค่ะ"  # ท่ี ๑๒ ยา้ยยยย ค่ะ
    norm = normalize(typed)
    assert norm.text == "ที่ 12 ย้าย ค่ะ"
    start = norm.text.index("ย้าย")
    assert typed[slice(*norm.span(start, start + 4))] == "ยา\u0e49ยยยย"
    assert norm.span(start, start + 4) == (7, 14)
    assert norm.span(0, 3) == (0, 3)  # ที่
    assert norm.span(0, 2) == (0, 3)  # ท + the reordered sara ii, which maps to both marks


@pytest.fixture(scope="module")
def catalog():
    return load_catalog(PROJECT_ROOT / "sla_catalog")


@pytest.mark.parametrize("scramble", SCRAMBLES.values(), ids=SCRAMBLES.keys())
def test_every_catalog_alias_typed_in_the_wrong_order_normalises_like_the_alias(catalog, scramble):
    aliases = [alias for service in catalog.services.values() for alias in service.aliases]
    scrambled = [(alias, scramble(alias)) for alias in aliases if scramble(alias) != alias]
    assert scrambled  # the scramble does change some aliases
    for alias, typed in scrambled:
        assert normalize(typed, drop_spaces=True).text == normalize(alias, drop_spaces=True).text, typed
        assert normalize(typed).text == normalize(alias).text, typed


def test_catalog_aliases_typed_in_the_wrong_order_match_their_service_exactly(catalog):
    matcher = ServiceMatcher.from_catalog(catalog)
    checked = 0
    for service in catalog.services.values():
        for alias in service.aliases:
            typed = split_sara_am(wrong_order(alias))
            if typed == alias:
                continue
            checked += 1
            message = f"อยากสอบถามเรื่อง{typed}ค่ะ"
            resolution = matcher.resolve(message)
            assert service.id in resolution.service_ids, typed
            mention = next(m for m in resolution.mentions if m.service_id == service.id)
            assert mention.edits == 0, typed
            assert message[mention.start : mention.end] == typed
    assert checked >= 60


@pytest.mark.parametrize("scramble", SCRAMBLES.values(), ids=SCRAMBLES.keys())
def test_offsets_stay_ordered_after_reordering(catalog, scramble):
    """Starts and ends never go backwards, so a contiguous span covers exactly its originals."""
    for service in catalog.services.values():
        text = scramble(service.name + " " + service.summary)
        for drop_spaces in (False, True):
            norm = normalize(text, drop_spaces=drop_spaces)
            assert len(norm.starts) == len(norm.ends) == len(norm.text)
            assert all(a <= b for a, b in zip(norm.starts, norm.starts[1:], strict=False))
            assert all(a <= b for a, b in zip(norm.ends, norm.ends[1:], strict=False))
            assert all(s < e for s, e in spans(norm))
