"""The compiled action-response validator: the same verdicts and errors as Rasa's own check."""

from __future__ import annotations

import inspect

import pytest
from jsonschema import ValidationError
from rasa.core.actions.action import RemoteAction
from rasa.utils.endpoints import EndpointConfig

from bot.runtime import rasa_patches

ORIGINAL = RemoteAction._validate_action_result
ACTION = RemoteAction("action_answer_service", EndpointConfig("http://127.0.0.1:1/webhook"))

VALID = [
    {"events": [], "responses": []},
    {"events": [{"event": "slot", "name": "service", "value": "passport"}], "responses": [{"text": "ตอบ"}]},
    {},
]
MALFORMED = [
    {"events": "not a list"},
    {"events": [{"name": "no event key"}]},
    {"responses": {"text": "not a list"}},
    {"events": [{"event": 5}]},
]


def test_rasa_still_validates_the_way_the_patch_copies():
    # If Rasa changes its check, the patch must be reviewed (and maybe dropped).
    source = inspect.getsource(ORIGINAL)
    assert "validate(result, self.action_response_format_spec())" in source
    assert "Failed to validate Action server response from API" in source


@pytest.mark.parametrize("response", VALID)
def test_valid_responses_pass_both(response):
    assert ORIGINAL(ACTION, response) is True
    assert rasa_patches.compiled_action_validator()(ACTION, response) is True


@pytest.mark.parametrize("response", MALFORMED)
def test_malformed_responses_are_rejected_with_rasas_error(response):
    with pytest.raises(ValidationError) as original:
        ORIGINAL(ACTION, response)
    with pytest.raises(ValidationError) as patched:
        rasa_patches.compiled_action_validator()(ACTION, response)
    assert patched.value.message == original.value.message
    assert "Failed to validate Action server response from API" in patched.value.message
    assert list(patched.value.path) == list(original.value.path)


def test_install_replaces_the_method_once(monkeypatch):
    monkeypatch.setattr(RemoteAction, "_validate_action_result", ORIGINAL)
    assert rasa_patches.install() == ["compiled_action_validator"]
    patched = RemoteAction._validate_action_result
    assert getattr(patched, rasa_patches.PATCHED_MARK)
    rasa_patches.install()
    assert RemoteAction._validate_action_result is patched
