"""Whole-word features, the SVM classifier and the matcher run once per message."""

from __future__ import annotations

import re

import numpy as np
import pytest
from rasa.engine.storage.resource import Resource
from rasa.nlu.constants import TOKENS_NAMES
from rasa.shared.nlu.constants import INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.classifiers import CalibratedLinearModel, LinearSVMClassifier, sentence_matrix
from bot.nlu.components import (
    SERVICE_MENTIONS,
    EntityMentionMasker,
    ServiceEntityExtractor,
    ThaiTokenizer,
)
from bot.nlu.featurizers import NgramVectorizer, ThaiWordFeaturizer

from .conftest import CATALOG

TOKENIZER = ThaiTokenizer(ThaiTokenizer.get_default_config())


def tokenized(*texts: str, intents: list[str] | None = None) -> list[Message]:
    messages = [
        Message({TEXT: text, **({INTENT: intents[i]} if intents else {})}) for i, text in enumerate(texts)
    ]
    TOKENIZER.process(messages)
    return messages


def featurizer(model_storage, execution_context, **config) -> ThaiWordFeaturizer:
    return ThaiWordFeaturizer.create(
        {**ThaiWordFeaturizer.get_default_config(), **config},
        model_storage,
        Resource(f"words{len(config)}"),
        execution_context,
    )


def test_rasas_word_pattern_is_what_splits_thai_words():
    # Why the component exists: the pattern of Rasa's word CountVectorsFeaturizer.
    assert re.findall(r"(?u)\b\w+\b", "ยอดค้างชำระ ที่ ค่ะ") == ["ยอดค", "างชำระ", "ท", "ค", "ะ"]


def test_thai_words_with_vowels_and_tone_marks_survive_whole(model_storage, execution_context):
    messages = tokenized("ยอดค้างชำระที่ไหนคะ", "ค่ะ ที่ ร้าน", "ต้องใช้เอกสารอะไรบ้างคะ")
    component = featurizer(model_storage, execution_context)
    component.train(TrainingData(messages))
    vocabulary = component.vectorizer.vocabulary
    for word in ("ยอดค้างชำระ", "ที่ไหน", "ค่ะ", "ที่", "ร้าน", "ต้อง", "ใช้", "เอกสาร"):
        assert word in vocabulary, word
    assert "ต้อง ใช้" in vocabulary  # word bigrams
    for fragment in ("ยอดค", "างชำระ", "ท", "ค", "ะ"):
        assert fragment not in vocabulary, fragment
    # Every feature is made of the tokenizer's tokens as they are.
    tokens = {t.text for m in messages for t in m.get(TOKENS_NAMES[TEXT])}
    assert all(set(feature.split(" ")) <= tokens for feature in vocabulary)


def test_sentence_and_sequence_features(model_storage, execution_context):
    train = tokenized("ต้องใช้เอกสารอะไร", "ใช้เวลากี่วัน", "ต้องจ่ายกี่บาท")
    component = featurizer(model_storage, execution_context)
    component.train(TrainingData(train))
    [message] = tokenized("ต้องใช้เวลากี่วัน 5 วัน")
    component.process([message])
    sequence, sentence = message.get_sparse_features(TEXT)
    words = [t.text for t in message.get(TOKENS_NAMES[TEXT])]
    assert sequence.features.shape == (len(words), component.vectorizer.size)
    assert sentence.features.shape == (1, component.vectorizer.size)
    assert np.isclose(np.linalg.norm(sentence.features.toarray()), 1.0)  # sublinear TF-IDF, l2


def test_sentence_features_alone_when_sequence_features_are_off(model_storage, execution_context):
    train = tokenized("ต้องใช้เอกสารอะไร", "ใช้เวลากี่วัน", "ต้องจ่ายกี่บาท")
    both, sentence_only = (
        featurizer(model_storage, execution_context, analyzer="char_wb", sequence_features=flag)
        for flag in (True, False)
    )
    for component in (both, sentence_only):
        component.train(TrainingData(train))
    [with_both], [alone] = tokenized("ต้องใช้เวลากี่วัน"), tokenized("ต้องใช้เวลากี่วัน")
    both.process([with_both])
    sentence_only.process([alone])
    sequence, sentence = alone.get_sparse_features(TEXT)
    assert sequence is None
    assert (sentence.features != with_both.get_sparse_features(TEXT)[1].features).nnz == 0


def test_numbers_are_one_feature():
    vectorizer = NgramVectorizer().fit([["อายุ", "60", "ปี"], ["5", "ปี"]])
    assert "__number__ ปี" in vectorizer.vocabulary and "60" not in vectorizer.vocabulary


def test_counts_weighting():
    vectorizer = NgramVectorizer(weighting="count", sublinear_tf=False, norm=None, max_ngram=1)
    vectorizer.fit([["ที่", "ที่", "ไหน"]])
    row = vectorizer.sentence(["ที่", "ที่", "ไหน"]).toarray()[0]
    assert sorted(row.tolist()) == [1.0, 2.0]


def test_character_ngrams_stay_inside_each_token():
    vectorizer = NgramVectorizer(analyzer="char_wb", min_ngram=2, max_ngram=3).fit([["ค่ะ", "ที่"]])
    assert " ค" in vectorizer.vocabulary and "่ะ " in vectorizer.vocabulary and " ที่" not in vectorizer.vocabulary
    assert not any(" " in gram.strip() for gram in vectorizer.vocabulary)  # never across tokens
    assert vectorizer.sequence(["ค่ะ", "ที่"]).shape == (2, vectorizer.size)


def test_matches_scikit_learn_tfidf():
    from sklearn.feature_extraction.text import TfidfVectorizer

    docs = [["ที่", "ค่ะ", "ยอดค้างชำระ"], ["__service__", "ต้อง", "ใช้", "เอกสาร"], ["ที่", "ที่", "ไหน"]]
    ours = NgramVectorizer(analyzer="char_wb", min_ngram=1, max_ngram=3).fit(docs)
    theirs = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 3), sublinear_tf=True, lowercase=False)
    matrix = theirs.fit_transform([" ".join(d) for d in docs])
    order = [theirs.vocabulary_[g] for g in sorted(ours.vocabulary, key=ours.vocabulary.get)]
    assert set(theirs.vocabulary_) == set(ours.vocabulary)
    for i, doc in enumerate(docs):
        assert np.allclose(ours.sentence(doc).toarray()[0], matrix[i].toarray()[0][order])


def test_featurizer_round_trips_through_the_model(model_storage, execution_context):
    component = featurizer(model_storage, execution_context, analyzer="char_wb", min_ngram=1, max_ngram=3)
    component.train(TrainingData(tokenized("ต่อใบขับขี่", "ทำพาสปอร์ต")))
    loaded = ThaiWordFeaturizer.load(
        component._config, model_storage, component._resource, execution_context
    )
    assert loaded.vectorizer.to_dict() == component.vectorizer.to_dict()


INTENTS = {
    "ask_fee": ["ค่าธรรมเนียมเท่าไหร่", "ต้องจ่ายกี่บาท", "เสียเงินไหม", "ราคาเท่าไร", "ค่าทำกี่บาท", "ฟรีไหม"],
    "ask_hours": ["เปิดกี่โมง", "ปิดกี่โมง", "วันเสาร์เปิดไหม", "เปิดวันไหนบ้าง", "เปิดถึงกี่โมง", "พักเที่ยงไหม"],
    "greet": ["สวัสดีครับ", "หวัดดี", "สวัสดีค่ะ", "ดีจ้า", "hello", "hi ครับ"],
}


@pytest.fixture
def trained_features(model_storage, execution_context):
    texts = [t for examples in INTENTS.values() for t in examples]
    intents = [i for i, examples in INTENTS.items() for _ in examples]
    messages = tokenized(*texts, intents=intents)
    words = featurizer(model_storage, execution_context)
    words.train(TrainingData(messages))
    words.process(messages)
    return words, messages


def test_svm_classifier_ranks_calibrated_confidences(model_storage, execution_context, trained_features):
    words, messages = trained_features
    config = {**LinearSVMClassifier.get_default_config(), "calibration_folds": 3}
    classifier = LinearSVMClassifier.create(config, model_storage, Resource("svm"), execution_context)
    classifier.train(TrainingData(messages))
    loaded = LinearSVMClassifier.load(config, model_storage, Resource("svm"), execution_context)
    [message] = tokenized("วันอาทิตย์เปิดกี่โมง")
    words.process([message])
    loaded.process([message])
    assert message.get("intent")["name"] == "ask_hours"
    ranking = message.get("intent_ranking")
    assert [r["name"] for r in ranking][0] == "ask_hours" and len(ranking) == 3
    assert abs(sum(r["confidence"] for r in ranking) - 1.0) < 1e-9
    assert ranking[0]["confidence"] < 1.0  # a probability, not a raw margin


def test_stored_model_scores_as_scikit_learn_does(trained_features):
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.model_selection import StratifiedKFold
    from sklearn.svm import LinearSVC

    _, messages = trained_features
    X = sentence_matrix(messages)
    y = np.array([m.get(INTENT) for m in messages])
    ours = CalibratedLinearModel.fit(X, list(y), C=1.0, class_weight=None, folds=3, max_iter=5000, random_state=42)
    ours = CalibratedLinearModel.from_dict(ours.to_dict())
    theirs = CalibratedClassifierCV(
        LinearSVC(C=1.0, max_iter=5000, random_state=42), method="sigmoid", ensemble=False,
        cv=StratifiedKFold(3, shuffle=True, random_state=42),
    ).fit(X, y)
    assert ours.classes == list(theirs.classes_)
    assert np.allclose(ours.predict_proba(X), theirs.predict_proba(X))


def test_the_matcher_runs_once_per_message(model_storage, execution_context, monkeypatch):
    config = {"catalog_dir": str(CATALOG)}
    for cls, name in ((ServiceEntityExtractor, "extractor"), (EntityMentionMasker, "masker")):
        cls.create(config, model_storage, Resource(name), execution_context).train(TrainingData())
    extractor = ServiceEntityExtractor.load(config, model_storage, Resource("extractor"), execution_context)
    masker = EntityMentionMasker.load(config, model_storage, Resource("masker"), execution_context)
    calls = []
    for component in (extractor, masker):
        original = component.matcher.resolve
        monkeypatch.setattr(component.matcher, "resolve", lambda text, o=original: calls.append(text) or o(text))

    [live] = tokenized("พาสปอร์ตหายต้องใช้อะไร")
    extractor.process([live])
    masker.process([live])
    assert calls == ["พาสปอร์ตหายต้องใช้อะไร"]  # the masker reused the extractor's mentions
    assert live.get(SERVICE_MENTIONS) is not None and SERVICE_MENTIONS not in live.as_dict(only_output_properties=True)

    # Training data never meets the extractor: the masker resolves, and masks the same way.
    [training] = tokenized("พาสปอร์ตหายต้องใช้อะไร")
    masker.process_training_data(TrainingData([training]))
    assert len(calls) == 2
    assert [t.text for t in training.get(TOKENS_NAMES[TEXT])] == [t.text for t in live.get(TOKENS_NAMES[TEXT])]
    assert [t.text for t in live.get(TOKENS_NAMES[TEXT])][:1] == ["__service__"]

    # Mentions stored for another text do not count.
    live.set(TEXT, "สวัสดีครับ")
    TOKENIZER.process([live])
    masker.process([live])
    assert len(calls) == 3 and "__service__" not in [t.text for t in live.get(TOKENS_NAMES[TEXT])]


def test_the_feature_and_classifier_fingerprints_follow_the_code():
    from bot.nlu.components import code_fingerprint

    assert ThaiWordFeaturizer.fingerprint_addon({}) == code_fingerprint()
    assert LinearSVMClassifier.fingerprint_addon({}) == code_fingerprint()
