"""Rasa 3.6 pipeline components for Thai (loaded by the Rasa server, in the Rasa environment).

- `ThaiTokenizer`: pythainlp `newmm` on normalised text, offsets in the original text.
- `ServiceEntityExtractor`: the `service` entity from the catalog's aliases (the catalog is
  read at training time and its alias table is stored in the model, so a model is
  self-contained; `make train` retrains when the catalog changes).
- `AgencyEntityExtractor`: the `agency` entity (value the agency `code`: ขนส่ง -> DLT) from the
  catalog's agency aliases, whole words only (`bot.catalog.agency_matching`), never inside a
  service's name (ตำรวจ in ใบผ่านตำรวจ: naming the service already names its agency).
- `TrackingNumberExtractor`: the `tracking_number` entity in canonical form.
- `EntityMentionMasker`: replaces the tokens of those entities with one placeholder token,
  so the intent classifier learns "what is asked" from the words around the service name
  instead of from the service name itself ("เช็คประวัติอาชญากรรม" is not a status check).
  It reuses the mentions the extractors found for the message: each matcher runs once.

The features and the intent classifier are in `bot.nlu.featurizers` (`ThaiWordFeaturizer`:
whole-word and in-word character n-grams) and `bot.nlu.classifiers` (`LinearSVMClassifier`).
"""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Text

import rasa.shared.utils.io
from pythainlp.tokenize import word_tokenize
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.extractors.extractor import EntityExtractorMixin
from rasa.nlu.tokenizers.tokenizer import Token, Tokenizer
from rasa.shared.nlu.constants import ENTITIES, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.catalog.agency_matching import AgencyMatcher, AgencyMention
from bot.catalog.loader import load_catalog
from bot.catalog.matching import ServiceMatcher, ServiceMention
from bot.text import normalize
from bot.tracking import find_tracking_numbers

SERVICE_ENTITY = "service"
AGENCY_ENTITY = "agency"
TRACKING_ENTITY = "tracking_number"


def code_fingerprint() -> str:
    """A hash of the source of every project module loaded here (`bot.*`).

    The components' behaviour lives in that code (normaliser, tokenizer, matcher, tracking
    numbers), which Rasa's own fingerprints cannot see: without this, a changed normaliser
    would keep a model (or cached training outputs) built with the old one.
    """
    digest = hashlib.sha256()
    files = sorted(
        str(module.__file__)
        for name, module in list(sys.modules.items())
        if (name == "bot" or name.startswith("bot.")) and getattr(module, "__file__", None)
    )
    for path in files:
        digest.update(Path(path).name.encode() + b"\0" + Path(path).read_bytes())
    return digest.hexdigest()[:16]


def thai_tokens(text: str) -> list[tuple[str, int, int]]:
    """(normalised token, start, end) with offsets into `text`; no whitespace-only tokens."""
    norm = normalize(text)
    tokens = []
    cursor = 0
    for word in word_tokenize(norm.text, engine="newmm", keep_whitespace=False):
        start = norm.text.find(word, cursor)
        if start < 0:  # newmm never rewrites text; guard against surprises anyway
            continue
        cursor = start + len(word)
        stripped = word.strip()
        if not stripped:
            continue
        lead = len(word) - len(word.lstrip())
        begin, end = norm.span(start + lead, start + lead + len(stripped))
        tokens.append((stripped, begin, end))
    return tokens


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_TOKENIZER, is_trainable=False)
class ThaiTokenizer(Tokenizer):
    """Thai word tokenizer: newmm dictionary segmentation after normalisation."""

    @staticmethod
    def supported_languages() -> Optional[List[Text]]:
        return ["th"]

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        return code_fingerprint()

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "intent_tokenization_flag": False,
            "intent_split_symbol": "_",
            "token_pattern": None,
            "prefix_separator_symbol": None,
        }

    def tokenize(self, message: Message, attribute: Text) -> List[Token]:
        text = message.get(attribute)
        tokens = [Token(word, start, end) for word, start, end in thai_tokens(text)]
        if not tokens:
            tokens = [Token(text, 0, len(text))]
        return self._apply_token_pattern(tokens)


def _append_entities(extractor: EntityExtractorMixin, message: Message, found: list[dict]) -> None:
    found = extractor.add_extractor_name(found)
    message.set(ENTITIES, message.get(ENTITIES, []) + found, add_to_output=True)


class _CatalogTermsComponent(GraphComponent):
    """Reads the catalog's service and agency aliases at training time and keeps them in the model."""

    FILE_NAME = "service_terms.json"
    AGENCY_FILE_NAME = "agency_terms.json"

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {"catalog_dir": "sla_catalog"}

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        matcher: ServiceMatcher | None = None,
        agency_matcher: AgencyMatcher | None = None,
    ) -> None:
        self._config = config
        self._model_storage = model_storage
        self._resource = resource
        self._matcher = matcher
        self._agency_matcher = agency_matcher

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "_CatalogTermsComponent":
        return cls(config, model_storage, resource)

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """The catalog and the code are inputs Rasa cannot see: retrain when either changes."""
        directory = config.get("catalog_dir", cls.get_default_config()["catalog_dir"])
        return f"{load_catalog(directory).fingerprint}-{code_fingerprint()}"

    def train(self, training_data: TrainingData) -> Resource:
        catalog = load_catalog(self._config["catalog_dir"])
        self._matcher = ServiceMatcher.from_catalog(catalog)
        self._agency_matcher = AgencyMatcher.from_catalog(catalog)
        with self._model_storage.write_to(self._resource) as path:
            rasa.shared.utils.io.dump_obj_as_json_to_file(path / self.FILE_NAME, self._matcher.to_dict())
            rasa.shared.utils.io.dump_obj_as_json_to_file(
                path / self.AGENCY_FILE_NAME, self._agency_matcher.to_dict()
            )
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "_CatalogTermsComponent":
        with model_storage.read_from(resource) as path:
            terms = rasa.shared.utils.io.read_json_file(path / cls.FILE_NAME)
            agencies = rasa.shared.utils.io.read_json_file(path / cls.AGENCY_FILE_NAME)
        return cls(config, model_storage, resource, ServiceMatcher.from_dict(terms), AgencyMatcher.from_dict(agencies))

    @property
    def matcher(self) -> ServiceMatcher:
        if self._matcher is None:
            raise RuntimeError(f"{type(self).__name__} used before training")
        return self._matcher

    @property
    def agency_matcher(self) -> AgencyMatcher:
        if self._agency_matcher is None:
            raise RuntimeError(f"{type(self).__name__} used before training")
        return self._agency_matcher


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class ServiceEntityExtractor(_CatalogTermsComponent, EntityExtractorMixin):
    """Emits `service` entities whose value is the catalog service ID."""

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            mentions = resolve_service_mentions(self.matcher, message)
            found = [
                {
                    "entity": SERVICE_ENTITY,
                    "start": m.start,
                    "end": m.end,
                    "value": m.service_id,
                    "confidence_entity": 1.0 if m.edits == 0 else 0.8,
                }
                for m in mentions
            ]
            _append_entities(self, message, found)
        return messages


# Where the extractor leaves the matcher's mentions for the masker (not part of the output).
SERVICE_MENTIONS = "service_mentions"


def resolve_service_mentions(matcher: ServiceMatcher, message: Message) -> tuple[ServiceMention, ...]:
    """The service mentions of the message's text, resolved once per message.

    The extractor resolves and stores them on the message; the masker, later in the same
    pipeline, reads them back. On training data the extractor does not run, so the masker
    resolves itself with the same matcher: training and live messages get the same mentions.
    The stored mentions carry the text they were found in, and count only for that text.
    """
    text = message.get(TEXT) or ""
    stored = message.get(SERVICE_MENTIONS)
    if stored and stored.get("text") == text:
        return tuple(ServiceMention(*m) for m in stored["mentions"])
    mentions = matcher.resolve(text).mentions if text else ()
    message.set(
        SERVICE_MENTIONS,
        {"text": text, "mentions": [[m.service_id, m.start, m.end, m.edits] for m in mentions]},
    )
    return mentions


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=True)
class AgencyEntityExtractor(_CatalogTermsComponent, EntityExtractorMixin):
    """Emits `agency` entities whose value is the agency `code` (ขนส่ง -> DLT, อำเภอ -> DOPA).

    An agency word inside a service's name is not emitted (the service names its agency); one
    beside it is ("ต่อภาษีรถที่ขนส่ง": the service and DLT), and the actions decide.
    """

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            mentions = resolve_agency_mentions(self.matcher, self.agency_matcher, message)
            found = [
                {"entity": AGENCY_ENTITY, "start": m.start, "end": m.end, "value": m.code, "confidence_entity": 1.0}
                for m in mentions
            ]
            _append_entities(self, message, found)
        return messages


# Where the agency extractor leaves its mentions for the masker (not part of the output).
AGENCY_MENTIONS = "agency_mentions"


def resolve_agency_mentions(
    services: ServiceMatcher, agencies: AgencyMatcher, message: Message
) -> tuple[AgencyMention, ...]:
    """The agency mentions of the message's text, outside its service mentions; once per message
    (stored for the masker, like `resolve_service_mentions`)."""
    text = message.get(TEXT) or ""
    stored = message.get(AGENCY_MENTIONS)
    if stored and stored.get("text") == text:
        return tuple(AgencyMention(*m) for m in stored["mentions"])
    exclude = [(m.start, m.end) for m in resolve_service_mentions(services, message)]
    mentions = agencies.resolve(text, exclude) if text else ()
    message.set(AGENCY_MENTIONS, {"text": text, "mentions": [[m.code, m.start, m.end] for m in mentions]})
    return mentions


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.ENTITY_EXTRACTOR, is_trainable=False)
class TrackingNumberExtractor(GraphComponent, EntityExtractorMixin):
    """Emits `tracking_number` entities normalised to CODE-YYYY-NNNNNN."""

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        return code_fingerprint()

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "TrackingNumberExtractor":
        return cls()

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            found = [
                {"entity": TRACKING_ENTITY, "start": m.start, "end": m.end, "value": m.value}
                for m in find_tracking_numbers(message.get(TEXT) or "")
            ]
            _append_entities(self, message, found)
        return messages


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class EntityMentionMasker(_CatalogTermsComponent):
    """Masks service names, agency names and tracking numbers in the tokens before featurization.

    It uses the matcher's mentions, not the annotated entities, so training examples and
    live messages are masked identically (annotated spans in the training data are often
    longer or shorter than what the matcher finds): on a live message those the extractors
    found (`resolve_service_mentions`, `resolve_agency_mentions`: each matcher runs once per
    message), on training data its own, from the same matchers. Registered as a featurizer so Rasa runs it on the
    training data too; place it after the extractor and before the featurizers.
    """

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        # mask_agencies: agency names (ขนส่ง, อำเภอ) become `__agency__` too.
        return {"catalog_dir": "sla_catalog", "mask_agencies": True}

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        for message in messages:
            tokens = message.get(TOKENS_NAMES[TEXT])
            text = message.get(TEXT) or ""
            if not tokens or not text:
                continue
            spans = [(m.start, m.end, SERVICE_ENTITY) for m in resolve_service_mentions(self.matcher, message)]
            if self._config.get("mask_agencies", True):
                spans += [
                    (m.start, m.end, AGENCY_ENTITY)
                    for m in resolve_agency_mentions(self.matcher, self.agency_matcher, message)
                ]
            spans += [(m.start, m.end, TRACKING_ENTITY) for m in find_tracking_numbers(text)]
            if spans:
                message.set(TOKENS_NAMES[TEXT], mask_tokens(tokens, spans))
        return messages


def mask_tokens(tokens: List[Token], spans: List[tuple[int, int, str]]) -> List[Token]:
    """Tokens with every token overlapping an entity span replaced by one `__entity__` token."""
    masked: List[Token] = []
    placed: set[int] = set()
    for token in tokens:
        hit = next((i for i, (s, e, _) in enumerate(spans) if token.start < e and token.end > s), None)
        if hit is None:
            masked.append(token)
        elif hit not in placed:
            start, end, name = spans[hit]
            masked.append(Token(f"__{name}__", start, end))
            placed.add(hit)
    return masked
