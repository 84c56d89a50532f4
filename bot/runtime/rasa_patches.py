"""Runtime patches to the Rasa server, installed by `bot.runtime.rasa_server` before Rasa starts.

Each patch is small, keeps Rasa's behaviour, and says how to drop it.

`compiled_action_validator` — Rasa 3.6 checks every action server response with
`jsonschema.validate(result, RemoteAction.action_response_format_spec())`
(`RemoteAction._validate_action_result`). `jsonschema.validate` first re-checks the schema
itself against its meta-schema and builds a new validator, on every call: about 19 ms per
custom action on two cores, more than all the rest of the turn. The patch builds the same
validator class for the same schema once and raises the same error (`best_match` of the
errors, with Rasa's own message suffix). Drop it when Rasa validates with a compiled
validator itself: delete the call in `install()` and this function; the test
tests/nlu/test_rasa_patches.py compares the patched and the original behaviour and fails if
Rasa's method changes under it.
"""

from __future__ import annotations

import logging
from typing import Any, Callable

logger = logging.getLogger(__name__)
PATCHED_MARK = "_sla_bot_compiled_validator"


def compiled_action_validator() -> Callable[[Any, dict], bool]:
    """Rasa's `_validate_action_result`, with the validator compiled once."""
    from jsonschema import ValidationError, exceptions, validators
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    spec = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(spec)
    validator_class.check_schema(spec)
    validator = validator_class(spec)

    def _validate_action_result(self: RemoteAction, result: dict) -> bool:
        error = exceptions.best_match(validator.iter_errors(result))
        if error is None:
            return True
        assert isinstance(error, ValidationError)
        error.message += (
            f". Failed to validate Action server response from API, "
            f"make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit "
            f"{DOCS_BASE_URL}/custom-actions"
        )
        raise error

    setattr(_validate_action_result, PATCHED_MARK, True)
    return _validate_action_result


def install() -> list[str]:
    """Install every patch (idempotent); the names of those installed, for the start-up log."""
    from rasa.core.actions.action import RemoteAction

    if not getattr(RemoteAction._validate_action_result, PATCHED_MARK, False):
        RemoteAction._validate_action_result = compiled_action_validator()  # type: ignore[method-assign]
    return ["compiled_action_validator"]
