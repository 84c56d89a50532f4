"""A linear SVM intent classifier with calibrated confidences (Rasa 3.6; Rasa environment).

scikit-learn's `LinearSVC` on the messages' sparse sentence features, with Platt-scaled
(sigmoid) confidences fitted on cross-validated decision values
(`CalibratedClassifierCV(..., ensemble=False)`: one SVM trained on all the data, one sigmoid
per intent), so that the `FallbackClassifier`'s threshold means something. The model is stored
as JSON (weights, intercepts and sigmoids) and scored with numpy, no pickle.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, List, Optional, Text, Type

import numpy as np
import rasa.shared.utils.io
import scipy.sparse
from rasa.engine.graph import ExecutionContext, GraphComponent
from rasa.engine.recipes.default_recipe import DefaultV1Recipe
from rasa.engine.storage.resource import Resource
from rasa.engine.storage.storage import ModelStorage
from rasa.nlu.classifiers import LABEL_RANKING_LENGTH
from rasa.nlu.classifiers.classifier import IntentClassifier
from rasa.nlu.featurizers.featurizer import Featurizer
from rasa.shared.nlu.constants import FEATURE_TYPE_SENTENCE, INTENT, TEXT
from rasa.shared.nlu.training_data.message import Message
from rasa.shared.nlu.training_data.training_data import TrainingData

from bot.nlu.components import code_fingerprint

logger = logging.getLogger(__name__)


def sentence_matrix(messages: List[Message]) -> scipy.sparse.csr_matrix:
    """The messages' sentence features, one row per message: the sparse ones side by side in the
    order the featurizers added them, then the dense ones (what `Message.get_sparse_features`
    and `get_dense_features` combine). Built directly as one CSR matrix: Rasa's combination
    also combines every token's sequence features, and stacks with `scipy.sparse.bmat`, about a
    millisecond per message spent on features this classifier never reads."""
    rows: list[tuple[int, np.ndarray, np.ndarray]] = []
    for message in messages:
        sentence = [f for f in message.features if f.attribute == TEXT and f.type == FEATURE_TYPE_SENTENCE]
        width, data, indices = 0, [], []
        for features in [f for f in sentence if f.is_sparse()] + [f for f in sentence if f.is_dense()]:
            matrix = features.features
            if isinstance(matrix, scipy.sparse.coo_matrix):  # what Rasa's featurizers give: read it as is
                values, columns = matrix.data, matrix.col
            elif scipy.sparse.issparse(matrix):
                row = scipy.sparse.csr_matrix(matrix)
                values, columns = row.data, row.indices
            else:
                dense = np.asarray(matrix, dtype=np.float64).ravel()
                columns = np.flatnonzero(dense)
                values = dense[columns]
            data.append(np.asarray(values, dtype=np.float64))
            indices.append(np.asarray(columns, dtype=np.int64) + width)
            width += matrix.shape[-1]
        rows.append((width, np.concatenate(data) if data else np.zeros(0), np.concatenate(indices) if indices else
                     np.zeros(0, dtype=np.int64)))
    width = max((w for w, _, _ in rows), default=0)
    rows = [(w, d, i) if w == width else (width, np.zeros(0), np.zeros(0, dtype=np.int64)) for w, d, i in rows]
    indptr = np.concatenate([[0], np.cumsum([len(d) for _, d, _ in rows], dtype=np.int64)]).astype(np.int64)
    data = np.concatenate([d for _, d, _ in rows]) if rows else np.zeros(0)
    indices = np.concatenate([i for _, _, i in rows]) if rows else np.zeros(0, dtype=np.int64)
    return scipy.sparse.csr_matrix((data, indices, indptr), shape=(len(rows), width))


class CalibratedLinearModel:
    """Linear decision values per class, each turned into a probability by its sigmoid,
    normalised over the classes (what scikit-learn's CalibratedClassifierCV does)."""

    def __init__(self, classes: List[str], coef: np.ndarray, intercept: np.ndarray,
                 sigmoid_a: np.ndarray, sigmoid_b: np.ndarray) -> None:
        self.classes = list(classes)
        self.coef = np.asarray(coef, dtype=np.float64)
        self.intercept = np.asarray(intercept, dtype=np.float64)
        self.sigmoid_a = np.asarray(sigmoid_a, dtype=np.float64)
        self.sigmoid_b = np.asarray(sigmoid_b, dtype=np.float64)
        # `X @ coef.T` would copy the whole (transposed, Fortran-ordered) matrix on every message:
        # scipy's sparse-dense product wants a C-ordered operand (0.15 ms a parse with warm caches,
        # 4% of a loaded Rasa server's time; 5 µs without the copy).
        self._coef_columns = np.ascontiguousarray(self.coef.T)

    @classmethod
    def fit(cls, X, y: List[str], *, C: float, class_weight: Optional[str], folds: int,
            max_iter: int, random_state: int) -> "CalibratedLinearModel":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.model_selection import StratifiedKFold
        from sklearn.svm import LinearSVC

        y = np.asarray(y)
        classes, counts = np.unique(y, return_counts=True)
        svm = LinearSVC(C=C, class_weight=class_weight, max_iter=max_iter, random_state=random_state)
        if len(classes) < 2:
            raise ValueError("the intent classifier needs at least two intents")
        folds = min(folds, int(counts.min()))
        if folds < 2:  # too few examples to calibrate: a plain logistic squashing of the scores
            svm.fit(X, y)
            columns = svm.coef_.shape[0]
            return cls([str(c) for c in svm.classes_], svm.coef_, svm.intercept_, -np.ones(columns), np.zeros(columns))
        calibrated = CalibratedClassifierCV(
            svm, method="sigmoid", ensemble=False,
            cv=StratifiedKFold(folds, shuffle=True, random_state=random_state),
        ).fit(X, y)
        [fitted] = calibrated.calibrated_classifiers_
        base = getattr(fitted, "estimator", None) or fitted.base_estimator
        return cls(
            [str(c) for c in calibrated.classes_],
            base.coef_,
            base.intercept_,
            np.array([c.a_ for c in fitted.calibrators]),
            np.array([c.b_ for c in fitted.calibrators]),
        )

    def predict_proba(self, X) -> np.ndarray:
        scores = np.asarray(X @ self._coef_columns) + self.intercept
        proba = 1.0 / (1.0 + np.exp(self.sigmoid_a * scores + self.sigmoid_b))
        if len(self.classes) == 2:  # one decision function, for the second class
            return np.hstack([1.0 - proba, proba])
        total = proba.sum(axis=1, keepdims=True)
        uniform = np.full_like(proba, 1.0 / len(self.classes))
        return np.divide(proba, total, out=uniform, where=total != 0)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "classes": self.classes,
            "coef": self.coef.tolist(),
            "intercept": self.intercept.tolist(),
            "sigmoid_a": self.sigmoid_a.tolist(),
            "sigmoid_b": self.sigmoid_b.tolist(),
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> "CalibratedLinearModel":
        return cls(**data)


@DefaultV1Recipe.register(DefaultV1Recipe.ComponentType.INTENT_CLASSIFIER, is_trainable=True)
class LinearSVMClassifier(IntentClassifier, GraphComponent):
    """Intent classifier: linear SVM with sigmoid-calibrated confidences."""

    FILE_NAME = "linear_svm.json"

    @classmethod
    def required_components(cls) -> List[Type]:
        return [Featurizer]

    @staticmethod
    def required_packages() -> List[Text]:
        return ["sklearn"]

    @classmethod
    def fingerprint_addon(cls, config: Dict[str, Any]) -> Optional[str]:
        """Retrain (no cached output) when the project's NLU code changes."""
        return code_fingerprint()

    @staticmethod
    def get_default_config() -> Dict[Text, Any]:
        return {
            "C": 1.0,
            "class_weight": None,  # or "balanced"
            "calibration_folds": 5,
            "max_iter": 5000,
            "random_state": 42,
            "ranking_length": LABEL_RANKING_LENGTH,
        }

    def __init__(self, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
                 model: Optional[CalibratedLinearModel] = None) -> None:
        self.config = {**self.get_default_config(), **config}
        self._model_storage = model_storage
        self._resource = resource
        self.model = model

    @classmethod
    def create(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
               execution_context: ExecutionContext) -> "LinearSVMClassifier":
        return cls(config, model_storage, resource)

    def train(self, training_data: TrainingData) -> Resource:
        examples = [e for e in training_data.intent_examples if e.get(INTENT) and e.get(TEXT)]
        if not examples:
            logger.debug("No intent examples: the SVM intent classifier is left untrained.")
            return self._resource
        X = sentence_matrix(examples)
        y = [e.get(INTENT) for e in examples]
        self.model = CalibratedLinearModel.fit(
            X, y,
            C=self.config["C"],
            class_weight=self.config["class_weight"],
            folds=self.config["calibration_folds"],
            max_iter=self.config["max_iter"],
            random_state=self.config["random_state"],
        )
        with self._model_storage.write_to(self._resource) as path:
            rasa.shared.utils.io.dump_obj_as_json_to_file(path / self.FILE_NAME, self.model.to_dict())
        return self._resource

    @classmethod
    def load(cls, config: Dict[Text, Any], model_storage: ModelStorage, resource: Resource,
             execution_context: ExecutionContext, **kwargs: Any) -> "LinearSVMClassifier":
        try:
            with model_storage.read_from(resource) as path:
                data = rasa.shared.utils.io.read_json_file(path / cls.FILE_NAME)
        except ValueError:
            return cls(config, model_storage, resource)
        return cls(config, model_storage, resource, CalibratedLinearModel.from_dict(data))

    def process(self, messages: List[Message]) -> List[Message]:
        if self.model is None or not messages:
            return messages
        X = sentence_matrix(messages)
        if X.shape[1] != self.model.coef.shape[1]:  # a message no featurizer could read
            X = scipy.sparse.csr_matrix((len(messages), self.model.coef.shape[1]))
        probabilities = self.model.predict_proba(X)
        for message, row in zip(messages, probabilities, strict=True):
            ranking = sorted(
                ({"name": name, "confidence": float(p)} for name, p in zip(self.model.classes, row, strict=True)),
                key=lambda r: -r["confidence"],
            )
            message.set("intent", ranking[0], add_to_output=True)
            length = self.config["ranking_length"]
            message.set("intent_ranking", ranking[:length] if length > 0 else ranking, add_to_output=True)
        return messages
