"""Tests of the Rasa pipeline components; they run in the Rasa environment (.venv-rasa)."""

from pathlib import Path

import pytest
from rasa.engine.graph import ExecutionContext, GraphSchema
from rasa.engine.storage.local_model_storage import LocalModelStorage
from rasa.engine.storage.resource import Resource

CATALOG = Path(__file__).resolve().parents[2] / "sla_catalog"


@pytest.fixture
def model_storage(tmp_path) -> LocalModelStorage:
    return LocalModelStorage(tmp_path)


@pytest.fixture
def execution_context() -> ExecutionContext:
    return ExecutionContext(GraphSchema({}), "test")


@pytest.fixture
def resource() -> Resource:
    return Resource("service_extractor")
