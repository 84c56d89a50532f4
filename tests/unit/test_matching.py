import json
import re
from pathlib import Path

import pytest
import yaml

from bot.catalog.matching import ServiceMatcher, ServiceTerms, is_plausible_typo

MATCHER = ServiceMatcher(
    {
        "id_card": ServiceTerms(("บัตรประชาชน", "บัตรปชช", "id card"), ("บัตร",)),
        "passport": ServiceTerms(("พาสปอร์ต", "หนังสือเดินทาง"), ()),
        "driving_licence_renewal": ServiceTerms(("ใบขับขี่", "ต่อใบขับขี่"), ("ใบอนุญาต", "รถ")),
        "food_shop_permit": ServiceTerms(("ใบอนุญาตร้านอาหาร",), ("ใบอนุญาต", "ร้าน")),
        "vehicle_tax_renewal": ServiceTerms(("ต่อภาษีรถ",), ("รถ",)),
    }
)


def test_alias_found_despite_spaces_dots_and_case():
    resolution = MATCHER.resolve("ทำบัตร ปชช. ใหม่ต้องใช้อะไร")
    assert resolution.service_id == "id_card"
    text = "ทำบัตร ปชช. ใหม่ต้องใช้อะไร"
    mention = resolution.mentions[0]
    assert text[mention.start:mention.end] == "บัตร ปชช"
    assert MATCHER.resolve("ID Card หายครับ").service_id == "id_card"


def test_longest_alias_wins_over_a_shorter_overlapping_one():
    resolution = MATCHER.resolve("อยากต่อใบขับขี่ค่ะ")
    assert [(m.service_id, m.edits) for m in resolution.mentions] == [("driving_licence_renewal", 0)]


def test_one_typo_in_a_long_alias_still_resolves():
    resolution = MATCHER.resolve("ทำหนังสือเดินทงใช้เวลากี่วัน")  # missing sara aa
    assert resolution.service_id == "passport"
    assert resolution.mentions[0].edits == 1


def test_two_services_named_are_both_reported():
    resolution = MATCHER.resolve("ต่อภาษีรถกับต่อใบขับขี่ทำที่เดียวกันได้ไหม")
    assert resolution.service_ids == ("vehicle_tax_renewal", "driving_licence_renewal")
    assert resolution.service_id is None


def test_weak_keywords_only_suggest_candidates():
    resolution = MATCHER.resolve("อยากทำใบอนุญาต")
    assert resolution.service_id is None
    assert set(resolution.candidates) == {"driving_licence_renewal", "food_shop_permit"}


def test_unrelated_text_matches_nothing():
    resolution = MATCHER.resolve("หวยออกอะไรงวดนี้")
    assert resolution.mentions == () and resolution.candidates == ()


def test_round_trips_through_the_model_file_format():
    again = ServiceMatcher.from_dict(MATCHER.to_dict())
    assert again.resolve("พาสปอร์ตหาย").service_id == "passport"


def test_real_catalog_avoids_known_false_friends():
    from bot.catalog import load_catalog
    from bot.settings import PROJECT_ROOT

    matcher = ServiceMatcher.from_catalog(load_catalog(PROJECT_ROOT / "sla_catalog"))
    assert matcher.resolve("ต่อภาษีที่ดินที่ไหน").service_id is None  # land tax is not vehicle tax
    assert matcher.resolve("สมุดเล่มทะเบียนรถหายทำไง").service_id is None  # the registration book
    assert matcher.resolve("ต่อภาษีรถยนต์").service_id == "vehicle_tax_renewal"
    assert matcher.resolve("ทำหนังสือเดินทงใหม่").service_id == "passport"



# --- matches that never invent a service (issue 8) ------------------------------------

TYPO_MATCHER = ServiceMatcher(
    {
        "birth_registration": ServiceTerms(("แจ้งเกิด",), ("โรงพยาบาล",)),
        "change_of_address": ServiceTerms(("ย้ายบ้าน", "ย้ายที่อยู่"), ()),
        "vehicle_tax_renewal": ServiceTerms(("ต่อภาษีรถ",), ()),
        "driving_licence_renewal": ServiceTerms(("ใบขับขี่",), ()),
        "id_card": ServiceTerms(("บัตรประชาชน",), ()),
        "food_shop_permit": ServiceTerms(("ร้านอาหาร", "ขายอาหาร"), ()),
        "passport": ServiceTerms(("พาสปอร์ต", "ทำพาส"), ("คลินิก",)),
    }
)


@pytest.mark.parametrize(
    "text",
    [
        "แจ้งเปิดเบอร์ใหม่ได้ที่ไหน",  # เกิด -> เปิด: "report a reopened line", not a birth
        "แจ้งเกินยอดในบิล",  # เกิด -> เกิน
        "ย้ายร้านไปอยู่ที่ใหม่",  # บ้าน -> ร้าน: moving a shop
    ],
)
def test_a_typo_that_spells_other_real_words_names_no_service(text):
    assert TYPO_MATCHER.resolve(text).mentions == ()


@pytest.mark.parametrize(
    ("text", "service"),
    [
        ("ต่อภาสีรถกี่บาท", "vehicle_tax_renewal"),  # ษ -> ส inside a word: ภา|สี are fragments
        ("ใบขัยขี่หมดอายุ", "driving_licence_renewal"),  # ขัย is listed, but nobody writes it
        ("แจงเกิดลูกค่ะ", "birth_registration"),  # a tone mark dropped: still a typo
        ("บัตรประชาชลหาย", "id_card"),
        ("ย้ายทีอยู่ทำที่ไหน", "change_of_address"),
    ],
)
def test_genuine_typos_still_resolve(text, service):
    resolution = TYPO_MATCHER.resolve(text)
    assert resolution.service_id == service
    assert resolution.mentions[0].edits == 1


def test_a_typed_span_that_is_itself_a_word_is_no_typo():
    assert not is_plausible_typo("ร้านกาแฟ", "ร้านกาแพ")
    assert is_plausible_typo("ร้านกาแพ", "ร้านกาแฟ")


@pytest.mark.parametrize(
    "text",
    [
        "เปิดบัญชีธนาคารต้องใช้บัตรประชาชนไหม",
        "ลงทะเบียนซิมใช้บัตรประชาชนของแม่ได้ไหม",
        "ร้านอาหารแถวนี้ร้านไหนอร่อย",
        "แนะนำร้านอาหารญี่ปุ่นหน่อย",
        "จองตั๋วเครื่องบินต้องใช้พาสปอร์ตไหม",
        "เช็คอินโรงแรมใช้ใบขับขี่แทนบัตรประชาชนได้ไหม",
        "แจงเกิดอาการแพ้ยา",  # a typo overruled by the rest of the message too
    ],
)
def test_an_ordinary_word_in_a_message_about_another_field_is_no_service(text):
    assert TYPO_MATCHER.resolve(text).mentions == ()


@pytest.mark.parametrize(
    ("text", "service"),
    [
        ("บัตรประชาชนหายทำไง", "id_card"),
        ("ร้านอาหารต้องขอใบอนุญาตไหม", "food_shop_permit"),
        ("ขายอาหารออนไลน์ส่งผ่าน lineman ต้องขออนุญาตไหม", "food_shop_permit"),  # a service phrase
        ("ทำพาสปอร์ตจ่ายผ่านธนาคารได้ไหม", "passport"),  # ทำพาส stands, พาสปอร์ต is overruled
        ("พาสปอร์ตต้องตรวจที่คลินิกไหม", "passport"),  # the service's own keyword is no cue
    ],
)
def test_service_phrases_and_own_terms_are_never_overruled(text, service):
    assert TYPO_MATCHER.resolve(text).service_id == service


@pytest.mark.parametrize(
    ("text", "service"),
    [
        ("ร้านอาหารเปิดกี่โมง", None),  # a restaurant's hours
        ("เปิดร้านอาหารต้องลงทุนเท่าไหร่", None),  # business advice
        ("ย้ายบ้านจ้างรถขนของที่ไหนดี", None),  # movers
        ("ร้านอาหารต้องยื่นเอกสารอะไรบ้าง", "food_shop_permit"),  # the procedure
        ("อยากเปิดร้านอาหาร ต้องขออนุญาตที่เขตไหม", "food_shop_permit"),
        ("ร้านอาหารค่ะ", "food_shop_permit"),  # the name alone, to a government service
        ("ย้ายบ้านต้องแจ้งย้ายทะเบียนบ้านไหม", "change_of_address"),
    ],
)
def test_premises_and_household_words_need_the_procedure_or_nothing_else(text, service):
    assert TYPO_MATCHER.resolve(text).service_id == service


def test_phone_company_cues_overrule_even_a_service_phrase():
    assert TYPO_MATCHER.resolve("ย้ายที่อยู่ติดตั้งเน็ตบ้านใหม่ได้ไหม").mentions == ()
    assert TYPO_MATCHER.resolve("ย้ายที่อยู่ต้องใช้เอกสารอะไร").service_id == "change_of_address"


def test_unguarded_matcher_is_the_plain_one():
    plain = ServiceMatcher(TYPO_MATCHER.terms, guarded=False)
    assert plain.resolve("แจ้งเปิดเบอร์ใหม่").service_id == "birth_registration"
    assert plain.resolve("ร้านอาหารเปิดกี่โมง").service_id == "food_shop_permit"


PROJECT = Path(__file__).resolve().parents[2]
_ANNOTATION = re.compile(r"\[([^\]]*)\]\{([^}]*)\}|\[([^\]]*)\]\([^)]*\)")


def _annotated_examples(path: Path) -> list[tuple[str, set[str]]]:
    """(plain text, annotated service IDs) of a Rasa NLU file's examples."""
    out = []
    for block in yaml.safe_load(path.read_text(encoding="utf-8")).get("nlu") or []:
        for line in (block.get("examples") or "").splitlines():
            line = line.strip()
            if not line.startswith("- "):
                continue
            annotations = [json.loads("{" + m[2] + "}") for m in _ANNOTATION.finditer(line[2:]) if m[2]]
            services = {a.get("value") for a in annotations if a.get("entity") == "service"}
            out.append((_ANNOTATION.sub(lambda m: m[1] or m[3], line[2:]), services))
    return out


@pytest.mark.parametrize("name", ["nlu_out_of_domain.yml", "nlu_out_of_domain_dev.yml"])
def test_real_catalog_finds_no_service_in_the_out_of_domain_sets(name):
    from bot.catalog import load_catalog

    path = PROJECT / "nlu_data" / "tests" / name
    if not path.exists():
        pytest.skip(f"{name} not written yet")
    matcher = ServiceMatcher.from_catalog(load_catalog(PROJECT / "sla_catalog"))
    texts = [text for text, _ in _annotated_examples(path)]
    assert len(texts) > 50
    assert {t: matcher.resolve(t).service_ids for t in texts if matcher.resolve(t).mentions} == {}


def test_the_checks_never_take_an_annotated_service_from_the_training_and_held_out_data():
    # They may only take services away from messages about other fields.
    from bot.catalog import load_catalog

    guarded = ServiceMatcher.from_catalog(load_catalog(PROJECT / "sla_catalog"))
    unguarded = ServiceMatcher(guarded.terms, guarded=False)
    files = sorted((PROJECT / "nlu_data" / "nlu").glob("*.yml")) + [PROJECT / "nlu_data" / "tests" / "nlu_heldout.yml"]
    lost = [
        text
        for path in files
        for text, annotated in _annotated_examples(path)
        if not set(unguarded.resolve(text).service_ids) & annotated <= set(guarded.resolve(text).service_ids)
    ]
    assert lost == []
