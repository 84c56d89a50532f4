"""The compiled action-response validator: the same verdicts and errors as Rasa's own check."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from jsonschema import ValidationError
from rasa.core import tracker_store
from rasa.core.actions.action import RemoteAction
from rasa.shared.core.events import Event
from rasa.shared.utils.common import all_subclasses
from rasa.utils.endpoints import EndpointConfig

from bot.runtime import rasa_patches

ORIGINAL = RemoteAction._validate_action_result
ORIGINAL_RESOLVE = Event.resolve_by_type
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


def _event_samples() -> list[dict]:
    from rasa.shared.core.events import (
        ActionExecuted,
        ActiveLoop,
        AllSlotsReset,
        BotUttered,
        FollowupAction,
        Restarted,
        SessionStarted,
        SlotSet,
        UserUttered,
    )

    events = [
        SlotSet("service", "passport"), SlotSet("complaint_photos", ["a", "b"]), SlotSet("x", None),
        ActiveLoop("complaint_form"), ActiveLoop(None), FollowupAction("action_listen"), AllSlotsReset(),
        BotUttered("ตอบ", {"buttons": [{"title": "ค่าธรรมเนียม", "payload": "/ask_fee"}]}), Restarted(),
        SessionStarted(), ActionExecuted("action_listen"), UserUttered("สวัสดี", {"name": "greet", "confidence": 1.0}),
    ]
    return [event.as_dict() for event in events]


def test_the_quick_event_check_accepts_exactly_what_the_full_check_accepts():
    from jsonschema import validators

    spec = RemoteAction.action_response_format_spec()
    full = validators.validator_for(spec)(spec)
    quick = rasa_patches._quick_event_check(spec, validators.validator_for(spec))
    assert quick is not None, "Rasa's schema changed shape: review the quick check"
    samples = _event_samples()
    responses = [*VALID, {"events": samples, "responses": [{"text": "ตอบ"}]}]
    for response in responses:
        assert quick(response) and full.is_valid(response)
    wrong = [
        *MALFORMED,
        {"events": [{"event": "slot", "name": "service"}]},  # no value
        {"events": [{"event": "no_such_event"}]},
        {"events": [{**samples[0], "timestamp": "yesterday"}]},
        {"events": [samples[0], 5]},
        [],
    ]
    for response in wrong:
        assert not quick(response) and not full.is_valid(response), response


def test_install_replaces_each_patched_function_once(monkeypatch):
    monkeypatch.setattr(RemoteAction, "_validate_action_result", ORIGINAL)
    monkeypatch.setattr(tracker_store, "create_engine_kwargs", tracker_store.create_engine_kwargs)
    monkeypatch.setattr(EndpointConfig, "session", EndpointConfig.session)
    monkeypatch.setattr(Event, "resolve_by_type", staticmethod(ORIGINAL_RESOLVE))
    installed = rasa_patches.install()
    assert installed == [
        "compiled_action_validator", "sqlite_tracker_store", "kept_endpoint_sessions", "cached_event_types"
    ]

    def current() -> tuple:
        return (
            RemoteAction._validate_action_result, tracker_store.create_engine_kwargs, EndpointConfig.session,
            Event.resolve_by_type,
        )

    patched = current()
    assert all(getattr(p, rasa_patches.PATCHED_MARK) for p in patched)
    rasa_patches.install()
    assert current() == patched


def test_event_types_resolve_as_rasa_resolves_them():
    # If Rasa changes its lookup, the patch must be reviewed (and maybe dropped).
    assert "all_subclasses(Event)" in inspect.getsource(ORIGINAL_RESOLVE)
    resolve = rasa_patches.cached_event_types(ORIGINAL_RESOLVE).__func__
    names = {cls.type_name for cls in all_subclasses(Event)}
    assert len(names) > 20
    for name in names:
        assert resolve(name) is ORIGINAL_RESOLVE(name), name
    assert resolve("topic") is None
    assert resolve("no_such_event", Event) is Event
    with pytest.raises(ValueError, match="Unknown event name 'no_such_event'"):
        resolve("no_such_event")

    class LateEvent(Event):  # an event class defined after the lookup was built
        type_name = "sla_bot_late_event"

        def __eq__(self, other: object) -> bool:
            return self is other

        def as_story_string(self) -> None:
            return None

    assert resolve("sla_bot_late_event") is LateEvent


def test_sqlite_tracker_store_is_pooled_in_wal_mode(tmp_path, monkeypatch):
    monkeypatch.setattr(tracker_store, "create_engine_kwargs", tracker_store.create_engine_kwargs)
    rasa_patches.install()
    store = tracker_store.SQLTrackerStore(dialect="sqlite", db=str(tmp_path / "t.db"))
    assert type(store.engine.pool).__name__ == "QueuePool"
    with store.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA synchronous").scalar() == 1  # NORMAL
    assert tracker_store.create_engine_kwargs("postgresql://x/y").get("poolclass") is None


def test_an_endpoint_reuses_one_session():
    endpoint = EndpointConfig("http://127.0.0.1:1/webhook")
    rasa_patches.install()

    async def twice() -> None:
        async with endpoint.session() as first:
            pass
        async with endpoint.session() as second:
            pass
        assert first is second and not first.closed
        await first.close()

    asyncio.run(twice())
