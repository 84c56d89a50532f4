import pytest

from bot.tracking import find_tracking_numbers, normalize_tracking_number


@pytest.mark.parametrize(
    "typed",
    ["DLT-2569-000123", "dlt-2569-000123", "DLT 2569 000123", "DLT-๒๕๖๙-๐๐๐๑๒๓", "dlt2569000123", "DLT/2569/000123"],
)
def test_every_typed_shape_normalises_to_the_contract_form(typed):
    assert normalize_tracking_number(typed) == "DLT-2569-000123"


def test_found_inside_thai_text_with_its_span():
    text = "ขอเช็คสถานะคำขอ cmp ๒๕๖๙ ๐๐๐๐๔๕ หน่อยค่ะ"
    [match] = find_tracking_numbers(text)
    assert match.value == "CMP-2569-000045"
    assert text[match.start:match.end] == "cmp ๒๕๖๙ ๐๐๐๐๔๕"


@pytest.mark.parametrize("text", ["DLT-2569-12345", "D-2569-000123", "ABCDEFG-2569-000123", "โทร 02-123-4567"])
def test_non_numbers_are_not_matched(text):
    assert normalize_tracking_number(text) is None
