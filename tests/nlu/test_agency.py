"""The `agency` entity: agency names as whole words, from the catalog's aliases, never a lookalike."""

from pathlib import Path

import pytest
from rasa.engine.storage.resource import Resource
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.loading import load_data
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.catalog.agency_matching import AgencyMatcher
from bot.catalog.loader import load_catalog
from bot.catalog.matching import ServiceMatcher
from bot.nlu.components import (
    AGENCY_MENTIONS,
    AgencyEntityExtractor,
    EntityMentionMasker,
    ServiceEntityExtractor,
    ThaiTokenizer,
)

from .conftest import CATALOG

NLU_DATA = Path(__file__).resolve().parents[2] / "nlu_data"
CONFIG = {"catalog_dir": str(CATALOG)}


@pytest.fixture(scope="module")
def matchers() -> tuple[ServiceMatcher, AgencyMatcher]:
    catalog = load_catalog(CATALOG)
    return ServiceMatcher.from_catalog(catalog), AgencyMatcher.from_catalog(catalog)


def agencies(matchers, text: str) -> list[tuple[str, str]]:
    """(code, the words as typed) of each agency the extractor would emit for `text`."""
    services, agency_matcher = matchers
    exclude = [(m.start, m.end) for m in services.resolve(text).mentions]
    return [(m.code, text[m.start : m.end]) for m in agency_matcher.resolve(text, exclude)]


@pytest.fixture
def extractor(model_storage, execution_context):
    AgencyEntityExtractor.create(CONFIG, model_storage, Resource("agency"), execution_context).train(TrainingData())
    return AgencyEntityExtractor.load(CONFIG, model_storage, Resource("agency"), execution_context)


def test_the_extractor_trains_from_the_catalog_and_gives_the_contracts_codes(extractor):
    for text, code, words in [
        ("อยากร้องเรียนเจ้าหน้าที่ขนส่งพูดจาไม่ดี", "DLT", "ขนส่ง"),
        ("อำเภอให้รอนานมาก", "DOPA", "อำเภอ"),
        ("กงสุลเปิดวันเสาร์ไหม", "DCA", "กงสุล"),
        ("ร้องเรียนตำรวจเรียกเงิน", "RTP", "ตำรวจ"),
    ]:
        message = Message({TEXT: text})
        extractor.process([message])
        [entity] = message.get(ENTITIES)
        assert (entity["entity"], entity["value"]) == ("agency", code)
        assert text[entity["start"] : entity["end"]] == words
        assert entity["extractor"] == "AgencyEntityExtractor"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("ขนส่งเปิดวันเสาร์ไหม", [("DLT", "ขนส่ง")]),
        ("ร้องเรียน กรมการขนส่งทางบก ครับ", [("DLT", "กรมการขนส่งทางบก")]),  # the longest alias wins
        ("รอที่ขนส่ง๒ชม.แล้วยังไม่ได้คิว", [("DLT", "ขนส่ง")]),  # Thai digits, no spaces
        ("รอที่อำเภอ ๓ ชั่วโมง", [("DOPA", "อำเภอ")]),
        ("ขนส่งพูดจาแย่มากกกก", [("DLT", "ขนส่ง")]),  # stretched letters
        ("เจ้าหน้าที่อําเภอพูดไม่ดี", [("DOPA", "อําเภอ")]),  # nikhahit + sara aa for sara am
        ("ที่ว่าการอำเภอเปิดกี่โมง", [("DOPA", "ที่ว่าการอำเภอ")]),
        ("ร้องเรียนสำนักทะเบียนอำเภอ", [("BORA", "สำนักทะเบียนอำเภอ")]),
        ("อบต.ไม่รับเรื่อง", [("LAO", "อบต")]),
        ("อบตไม่รับเรื่อง", [("LAO", "อบต")]),  # no dot
        ("นายกอบต.เรียกเงิน", [("LAO", "อบต")]),
        ("สน.ไม่ยอมรับแจ้งความ", [("RTP", "สน")]),
        ("ตรวจประวัติที่ สน. รับถึงกี่โมง", [("RTP", "สน")]),
        ("ร้องเรียนเจ้าหน้าที่ตำรวจ", [("RTP", "ตำรวจ")]),  # newmm keeps เจ้าหน้าที่ตำรวจ whole
        ("ตำรวจจราจรเรียกเงิน", [("RTP", "ตำรวจ")]),
        ("เจ้าหน้าที่เขตนั่งเล่นโทรศัพท์", [("LAO", "เขต")]),
        ("ร้องเรียนเขตบางกะปิ", [("LAO", "เขต")]),
        ("ทำบัตรใหม่ไว้ที่เขต บอกให้มารับอีกวัน", [("LAO", "เขต")]),
        ("ไปติดต่อท้องถิ่นแล้วไม่มีใครรับเรื่อง", [("LAO", "ท้องถิ่น")]),
        # the catalog's aliases since the NLU review: the general name and its abbreviation
        ("องค์กรปกครองส่วนท้องถิ่นไม่รับเรื่อง", [("LAO", "องค์กรปกครองส่วนท้องถิ่น")]),
        ("ร้องเรียน อปท. ใกล้บ้าน", [("LAO", "อปท")]),
        ("เจ้าหน้าที่ฝ่ายปกครองเรียกเงิน", [("DOPA", "ปกครอง")]),
        ("จะแจ้ง ป.ป.ท. ว่าอบต.ทุจริต", [("PACC", "ป.ป.ท"), ("LAO", "อบต")]),
        ("ขอใบอนุญาตที่อบต.หรืออำเภอ", [("LAO", "อบต"), ("DOPA", "อำเภอ")]),
        # an agency word right after another, unspaced, qualifies it: which area's DOE office
        ("ยื่นที่จัดหางานเขตไหนคะ", [("DOE", "จัดหางาน")]),
    ],
)
def test_agency_names_are_found_as_typed(matchers, text, expected):
    assert agencies(matchers, text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "สนใจทำพาสปอร์ต",  # สน inside สนใจ
        "เจ้าหน้าที่ไม่สนเลย",  # สน without its dot is "to care"
        "ไม่สนใจประชาชน",
        "ตรวจสอบสถานะคำขอ",  # สถ. inside สถานะ
        "ขอสถานที่ติดต่อหน่อย",
        "มีคนตอบจริงไหม",  # อบจ across ตอบ|จริง
        "หมดเขตยื่นวันไหนคะ",  # deadline
        "ขอบเขตงานมีอะไรบ้าง",
        "โรงเรียนในเขตพื้นที่การศึกษา",
        "บ้านอยู่ในเขตกรุงเทพ",
        "นอกเขตเทศบาลต้องไปที่ไหน",
        "โรงงานในเขตอุตสาหกรรม",
        "เขตห้ามจอดหน้าบ้าน",
        "บริษัทขนส่งส่งของช้ามาก",  # a carrier, not the department
        "ขนส่งพัสดุช้ามาก",
        "ส่งพัสดุแล้วขนส่งทำของพัง",
        "รถขนส่งสินค้าจอดขวางทาง",
        "ผู้ปกครองต้องไปด้วยไหม",  # guardian
        "อาหารท้องถิ่นเชียงใหม่อร่อยไหม",
        "สนามบินดอนเมืองไปยังไง",
        "หนังเรื่องไหนสนุก",
    ],
)
def test_lookalikes_are_not_agencies(matchers, text):
    assert agencies(matchers, text) == []


def test_words_of_a_service_name_are_the_service_not_an_agency(matchers):
    assert agencies(matchers, "จดทะเบียนพาณิชย์ยื่นที่ไหน") == []  # ทะเบียนพาณิชย์ names DBD too
    # beside the service, the office is named too: the actions decide which wins
    assert agencies(matchers, "ต่อภาษีรถที่ขนส่ง เจ้าหน้าที่เรียกเงินเพิ่ม") == [("DLT", "ขนส่ง")]


def test_extractor_and_masker_resolve_agencies_once_and_mask_them(model_storage, execution_context, monkeypatch):
    components = []
    for cls, name in ((ServiceEntityExtractor, "s"), (AgencyEntityExtractor, "a"), (EntityMentionMasker, "m")):
        cls.create(CONFIG, model_storage, Resource(name), execution_context).train(TrainingData())
        components.append(cls.load(CONFIG, model_storage, Resource(name), execution_context))
    service_extractor, agency_extractor, masker = components
    calls = []
    for component in (agency_extractor, masker):
        original = component.agency_matcher.resolve
        def counted(text, exclude=(), o=original):
            calls.append(text)
            return o(text, exclude)

        monkeypatch.setattr(component.agency_matcher, "resolve", counted)
    message = Message({TEXT: "ขนส่งเปิดวันเสาร์ไหม จะไปต่อใบขับขี่"})
    ThaiTokenizer(ThaiTokenizer.get_default_config()).process([message])
    for component in components:
        component.process([message])
    assert calls == [message.get(TEXT)]
    assert [(e["entity"], e["value"]) for e in message.get(ENTITIES)] == [
        ("service", "driving_licence_renewal"), ("agency", "DLT")
    ]
    words = [t.text for t in message.get(TOKENS_NAMES[TEXT])]
    assert words[0] == "__agency__" and words[-1] == "__service__" and "ขนส่ง" not in words
    assert AGENCY_MENTIONS not in message.as_dict(only_output_properties=True)


def test_the_masker_can_leave_agencies_unmasked(model_storage, execution_context):
    config = {**CONFIG, "mask_agencies": False}
    EntityMentionMasker.create(config, model_storage, Resource("m"), execution_context).train(TrainingData())
    masker = EntityMentionMasker.load(config, model_storage, Resource("m"), execution_context)
    message = Message({TEXT: "อำเภอเปิดกี่โมง"})
    ThaiTokenizer(ThaiTokenizer.get_default_config()).process([message])
    masker.process([message])
    assert [t.text for t in message.get(TOKENS_NAMES[TEXT])][0] == "อำเภอ"


def _annotated(example: Message) -> list[tuple[str, int, int]]:
    return sorted((e["value"], e["start"], e["end"]) for e in example.get(ENTITIES) or [] if e["entity"] == "agency")


def test_training_annotations_are_what_the_extractor_finds(matchers):
    """Every agency the extractor finds in the training data is annotated, and nothing else."""
    services, agency_matcher = matchers
    data = load_data(str(NLU_DATA / "nlu"))
    annotated = 0
    for example in data.training_examples:
        text = example.get(TEXT)
        exclude = [(m.start, m.end) for m in services.resolve(text).mentions]
        found = sorted((m.code, m.start, m.end) for m in agency_matcher.resolve(text, exclude))
        assert found == _annotated(example), text
        annotated += len(found)
    assert annotated >= 150


@pytest.mark.parametrize("name", ["nlu_out_of_domain.yml", "nlu_out_of_domain_dev.yml"])
def test_no_agency_in_messages_about_other_fields(matchers, name):
    data = load_data(str(NLU_DATA / "tests" / name))
    found = {e.get(TEXT): agencies(matchers, e.get(TEXT)) for e in data.training_examples}
    assert {text: hits for text, hits in found.items() if hits} == {}
