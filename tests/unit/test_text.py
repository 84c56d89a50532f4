import datetime as dt

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
