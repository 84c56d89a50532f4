"""Whole-word sparse features for Thai (a Rasa 3.6 featurizer; Rasa environment).

Rasa's word `CountVectorsFeaturizer` joins the tokens and splits them again with the pattern
`(?u)\\b\\w+\\b`. Thai vowel and tone marks are not `\\w`, so it cuts Thai words apart: ที่
becomes ท, ค่ะ becomes ค + ะ, ยอดค้างชำระ becomes ยอดค + างชำระ. `ThaiWordFeaturizer` uses the
ThaiTokenizer's tokens exactly as they are (after `EntityMentionMasker`, so a service name is
one `__service__` token): word n-grams (1-2 by default), as counts or sublinear TF-IDF. With
`analyzer: char_wb`, the same component gives character n-grams inside each token (TF-IDF
weighted, which Rasa's `CountVectorsFeaturizer` cannot do).

Sentence features: the n-gram vector of the whole message (what the intent classifiers use).
Sequence features: one row per token with its unigram (what DIET would use). The vocabulary
and IDF weights are stored in the model as JSON.
"""

from __future__ import annotations

import math
from collections import Counter
from typing import Any, Dict, List, Optional, Text, Type

import numpy as np
import rasa.shared.utils.io
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.constants import TOKENS_NAMES
from rasa.nlu.featurizers.sparse_featurizer.sparse_featurizer import SparseFeaturizer
from rasa.nlu.tokenizers.tokenizer import Tokenizer
from rasa.shared.nlu.constants import TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.components import code_fingerprint

NUMBER_TOKEN = "__number__"
VECTORIZER_OPTIONS = (
    "analyzer", "min_ngram", "max_ngram", "weighting", "sublinear_tf", "norm", "numbers_as_one_token", "min_df",
)
SEPARATOR = " "


class NgramVectorizer:
    """N-gram vectors over given token lists (no re-tokenisation).

    `analyzer="word"`: n-grams of whole tokens. `analyzer="char_wb"`: character n-grams inside
    each token, padded with a space at both ends (scikit-learn's `char_wb`), which carry the
    shared parts of misspelt or inflected words.
    """

    def __init__(
        self,
        *,
        analyzer: str = "word",
        min_ngram: int = 1,
        max_ngram: int = 2,
        weighting: str = "tfidf",
        sublinear_tf: bool = True,
        norm: Optional[str] = "l2",
        numbers_as_one_token: bool = True,
        min_df: int = 1,
        vocabulary: Optional[Dict[str, int]] = None,
        idf: Optional[List[float]] = None,
    ) -> None:
        if analyzer not in ("word", "char_wb"):
            raise ValueError(f"analyzer must be 'word' or 'char_wb', not {analyzer!r}")
        if weighting not in ("count", "tfidf"):
            raise ValueError(f"weighting must be 'count' or 'tfidf', not {weighting!r}")
        if not 1 <= min_ngram <= max_ngram:
            raise ValueError("need 1 <= min_ngram <= max_ngram")
        self.analyzer = analyzer
        self.min_ngram = min_ngram
        self.max_ngram = max_ngram
        self.weighting = weighting
        self.sublinear_tf = sublinear_tf
        self.norm = norm
        self.numbers_as_one_token = numbers_as_one_token
        self.min_df = min_df
        self.vocabulary: Dict[str, int] = dict(vocabulary or {})
        self.idf = np.asarray(idf if idf is not None else [1.0] * len(self.vocabulary), dtype=np.float64)

    def words(self, tokens: List[str]) -> List[str]:
        if not self.numbers_as_one_token:
            return list(tokens)
        return [NUMBER_TOKEN if t.isdigit() else t for t in tokens]

    def ngrams(self, tokens: List[str]) -> List[str]:
        words = self.words(tokens)
        if self.analyzer == "char_wb":
            return [gram for word in words for gram in self._char_ngrams(word)]
        grams: List[str] = []
        for n in range(self.min_ngram, self.max_ngram + 1):
            grams += [SEPARATOR.join(words[i : i + n]) for i in range(len(words) - n + 1)]
        return grams

    def _char_ngrams(self, word: str) -> List[str]:
        padded = f" {word} "
        grams: List[str] = []
        for n in range(self.min_ngram, self.max_ngram + 1):
            if len(padded) <= n:  # a short word counts once, whole (as scikit-learn does)
                grams.append(padded)
                break
            grams += [padded[i : i + n] for i in range(len(padded) - n + 1)]
        return grams

    def token_ngrams(self, token: str) -> List[str]:
        """The features of one token alone (a row of the sequence features)."""
        [word] = self.words([token])
        return self._char_ngrams(word) if self.analyzer == "char_wb" else [word]

    def fit(self, documents: List[List[str]]) -> "NgramVectorizer":
        df: Counter = Counter()
        for tokens in documents:
            df.update(set(self.ngrams(tokens)))
        kept = sorted(g for g, n in df.items() if n >= self.min_df)
        self.vocabulary = {g: i for i, g in enumerate(kept)}
        if self.weighting == "tfidf":
            # sklearn's smoothed IDF: ln((1 + n) / (1 + df)) + 1
            total = len(documents)
            self.idf = np.array([math.log((1 + total) / (1 + df[g])) + 1.0 for g in kept])
        else:
            self.idf = np.ones(len(kept))
        return self

    @property
    def size(self) -> int:
        return len(self.vocabulary)

    def _weights(self, counts: Dict[int, int]) -> tuple[list[int], np.ndarray]:
        columns = sorted(counts)
        values = np.array([counts[c] for c in columns], dtype=np.float64)
        if self.sublinear_tf:
            values = 1.0 + np.log(values)
        values = values * self.idf[columns]
        if self.norm == "l2" and values.size:
            values = values / np.linalg.norm(values)
        return columns, values

    def sentence(self, tokens: List[str]) -> scipy.sparse.coo_matrix:
        counts: Counter = Counter()
        for gram in self.ngrams(tokens):
            column = self.vocabulary.get(gram)
            if column is not None:
                counts[column] += 1
        columns, values = self._weights(counts)
        return scipy.sparse.coo_matrix(
            (values, ([0] * len(columns), columns)), shape=(1, self.size)
        )

    def sequence(self, tokens: List[str]) -> scipy.sparse.coo_matrix:
        rows, columns, values = [], [], []
        for row, token in enumerate(tokens):
            counts = Counter(
                c for c in (self.vocabulary.get(g) for g in self.token_ngrams(token)) if c is not None
            )
            for column, count in sorted(counts.items()):
                rows.append(row)
                columns.append(column)
                values.append(float(count))
        return scipy.sparse.coo_matrix((values, (rows, columns)), shape=(len(tokens), self.size))

    def to_dict(self) -> Dict[str, Any]:
        return {
            "analyzer": self.analyzer,
            "min_ngram": self.min_ngram,
            "max_ngram": self.max_ngram,
            "weighting": self.weighting,
            "sublinear_tf": self.sublinear_tf,
            "norm": self.norm,
            "numbers_as_one_token": self.numbers_as_one_token,
            "min_df": self.min_df,
            "vocabulary": self.vocabulary,
            "idf": [float(x) for x in self.idf],
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "NgramVectorizer":
        return cls(**data)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.MESSAGE_FEATURIZER, is_trainable=True)
class ThaiWordFeaturizer(SparseFeaturizer, GraphComponent):
    """Sparse n-gram features from the tokenizer's (masked) tokens, kept whole: word n-grams,
    or (`analyzer: char_wb`) character n-grams within each token."""

    FILE_NAME = "thai_word_featurizer.json"

    @classmethod
    def required_components(cls) -> List[Type]:
        return [Tokenizer]

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """Retrain (no cached output) when the project's NLU code changes."""
        return code_fingerprint()

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            **SparseFeaturizer.get_default_config(),
            "analyzer": "word",  # or "char_wb"
            "min_ngram": 1,
            "max_ngram": 2,
            "weighting": "tfidf",  # or "count"
            "sublinear_tf": True,
            "norm": "l2",  # or null
            "numbers_as_one_token": True,
            "min_df": 1,
            # Per-token (sequence) features, as Rasa's featurizers add them. Only components that
            # read tokens' features (DIET, CRFEntityExtractor) need them; computing them took more
            # than half of this featurizer's time on every message.
            "sequence_features": True,
        }

    def __init__(
        self,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        vectorizer: Optional[NgramVectorizer] = None,
    ) -> None:
        SparseFeaturizer.__init__(self, execution_context.node_name, config)
        self._model_storage = model_storage
        self._resource = resource
        self.vectorizer = vectorizer

    @classmethod
    def validate_config(cls, config: Dict[Text, Any]) -> None:
        NgramVectorizer(**cls._vectorizer_options(config))

    @staticmethod
    def _vectorizer_options(config: Dict[Text, Any]) -> Dict[str, Any]:
        defaults = ThaiWordFeaturizer.get_default_config()
        return {k: config.get(k, defaults[k]) for k in VECTORIZER_OPTIONS}

    @classmethod
    def create(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
    ) -> "ThaiWordFeaturizer":
        return cls(config, model_storage, resource, execution_context)

    @staticmethod
    def _tokens(message: Message) -> List[str]:
        return [t.text for t in message.get(TOKENS_NAMES[TEXT]) or []]

    def train(self, training_data: TrainingData) -> Resource:
        documents = [self._tokens(m) for m in training_data.training_examples]
        documents = [d for d in documents if d]
        self.vectorizer = NgramVectorizer(**self._vectorizer_options(self._config)).fit(documents)
        with self._model_storage.write_to(self._resource) as path:
            rasa.shared.utils.io.dump_obj_as_json_to_file(path / self.FILE_NAME, self.vectorizer.to_dict())
        return self._resource

    @classmethod
    def load(
        cls,
        config: Dict[Text, Any],
        model_storage: ModelStorage,
        resource: Resource,
        execution_context: ExecutionContext,
        **kwargs: Any,
    ) -> "ThaiWordFeaturizer":
        try:
            with model_storage.read_from(resource) as path:
                data = rasa.shared.utils.io.read_json_file(path / cls.FILE_NAME)
        except ValueError:  # not trained (no NLU data): featurize nothing
            return cls(config, model_storage, resource, execution_context)
        return cls(config, model_storage, resource, execution_context, NgramVectorizer.from_dict(data))

    def process_training_data(self, training_data: TrainingData) -> TrainingData:
        self.process(training_data.training_examples)
        return training_data

    def process(self, messages: List[Message]) -> List[Message]:
        if self.vectorizer is None or not self.vectorizer.size:
            return messages
        for message in messages:
            tokens = self._tokens(message)
            if not tokens:
                continue
            sequence = self.vectorizer.sequence(tokens) if self._config["sequence_features"] else None
            self.add_features_to_message(sequence, self.vectorizer.sentence(tokens), TEXT, message)
        return messages
