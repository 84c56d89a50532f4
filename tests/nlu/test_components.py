import pytest
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.components import ServiceEntityExtractor, ThaiTokenizer, TrackingNumberExtractor, thai_tokens

from .conftest import CATALOG


@pytest.mark.parametrize(
    "text",
    [
        "อยากต่อภาษีรถยนต์ ต้องใช้เอกสารอะไรบ้างคะ",
        "  ทำ  passport  ที่ไหนได้บ้าง  ",
        "บัตร\u200bประชาชน หาย ๒ ใบ",
        "เเจ้งเกิดลูกต้องใช้อะไร",  # two sara e for sara ae: normalised, offsets still original
        "ค่าธรรมเนียมเท่าไหร่?",
    ],
)
def test_token_offsets_point_into_the_original_text(text):
    tokens = thai_tokens(text)
    assert tokens, "every message yields tokens"
    previous_end = 0
    for word, start, end in tokens:
        assert previous_end <= start < end <= len(text)
        original = text[start:end]
        assert original.strip() == original and original, "no whitespace tokens"
        assert "\u200b" not in word
        previous_end = end


def test_tokens_are_normalised_words():
    words = [w for w, _, _ in thai_tokens("เเจ้งเกิด ๒ PASSPORT")]
    assert "แจ้ง" in words and "2" in words and "passport" in words


def test_tokenizer_component_sets_tokens_on_messages():
    tokenizer = ThaiTokenizer(ThaiTokenizer.get_default_config())
    message = Message({TEXT: "ต่อใบขับขี่ใช้เวลานานไหม"})
    tokenizer.process([message])
    tokens = message.get("text_tokens")
    assert [t.text for t in tokens][:2] == ["ต่อ", "ใบขับขี่"]
    assert tokens[1].start == 3 and tokens[1].end == 11


def test_service_extractor_trains_from_the_catalog_and_loads_back(model_storage, resource, execution_context):
    config = {"catalog_dir": str(CATALOG)}
    extractor = ServiceEntityExtractor.create(config, model_storage, resource, execution_context)
    extractor.train(TrainingData())
    loaded = ServiceEntityExtractor.load(config, model_storage, resource, execution_context)
    message = Message({TEXT: "ทำพาสปอร์ตต้องใช้อะไรบ้างคะ"})
    loaded.process([message])
    [entity] = message.get(ENTITIES)
    assert entity["entity"] == "service" and entity["value"] == "passport"
    assert message.get(TEXT)[entity["start"]:entity["end"]] == "พาสปอร์ต"
    assert entity["extractor"] == "ServiceEntityExtractor"


def test_tracking_number_extractor_normalises():
    message = Message({TEXT: "เรื่อง dlt ๒๕๖๙ ๐๐๐๑๒๓ ถึงไหนแล้ว"})
    TrackingNumberExtractor().process([message])
    [entity] = message.get(ENTITIES)
    assert entity["value"] == "DLT-2569-000123"
    assert message.get(TEXT)[entity["start"]:entity["end"]] == "dlt ๒๕๖๙ ๐๐๐๑๒๓"


def test_masker_replaces_mentions_with_one_placeholder_each(model_storage, resource, execution_context):
    from bot.nlu.components import EntityMentionMasker

    config = {"catalog_dir": str(CATALOG)}
    EntityMentionMasker.create(config, model_storage, resource, execution_context).train(TrainingData())
    masker = EntityMentionMasker.load(config, model_storage, resource, execution_context)
    tokenizer = ThaiTokenizer(ThaiTokenizer.get_default_config())
    message = Message({TEXT: "เช็คประวัติอาชญากรรมออนไลน์ได้ไหม DLT 2569 000123"})
    tokenizer.process([message])
    masker.process([message])
    words = [t.text for t in message.get("text_tokens")]
    assert words[0] == "__service__" and "เช็ค" not in words
    assert words[1:] == ["ออนไลน์", "ได้", "ไหม", "__tracking_number__"]
