from bot.catalog.matching import ServiceMatcher, ServiceTerms

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
