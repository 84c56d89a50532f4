"""The compiled action-response validator: the same verdicts and errors as Rasa's own check."""

from __future__ import annotations

import asyncio
import gc
import inspect
import json

import pytest
from jsonschema import ValidationError
from rasa.core import run, tracker_store
from rasa.core.actions.action import RemoteAction
from rasa.core.featurizers.tracker_featurizers import TrackerFeaturizer
from rasa.core.policies.rule_policy import RulePolicy
from rasa.engine.exceptions import GraphRunError
from rasa.engine.runner.dask import DaskGraphRunner
from rasa.shared.core.events import Event
from rasa.shared.utils.common import all_subclasses
from rasa.utils.endpoints import EndpointConfig

from bot.runtime import rasa_patches

ORIGINAL = RemoteAction._validate_action_result
ORIGINAL_RESOLVE = Event.resolve_by_type
ORIGINAL_RUN = DaskGraphRunner.run
ORIGINAL_CREATE_STATES = TrackerFeaturizer._create_states
ORIGINAL_CALL_FORMAT = RemoteAction._action_call_format
ORIGINAL_POSSIBLE_KEYS = RulePolicy._get_possible_keys
ORIGINAL_LOAD_AGENT = run.load_agent_on_start
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
    monkeypatch.setattr(DaskGraphRunner, "run", ORIGINAL_RUN)
    monkeypatch.setattr(TrackerFeaturizer, "_create_states", staticmethod(ORIGINAL_CREATE_STATES))
    monkeypatch.setattr(RemoteAction, "_action_call_format", ORIGINAL_CALL_FORMAT)
    monkeypatch.setattr(RulePolicy, "_get_possible_keys", ORIGINAL_POSSIBLE_KEYS)
    monkeypatch.setattr(run, "load_agent_on_start", ORIGINAL_LOAD_AGENT)
    installed = rasa_patches.install()
    assert installed == [
        "compiled_action_validator", "sqlite_tracker_store", "kept_endpoint_sessions", "cached_event_types",
        "sequential_graph_runs", "reused_tracker_states", "narrowed_rule_matching", "past_messages_withheld",
        "frozen_loaded_model",
    ]

    def current() -> tuple:
        return (
            RemoteAction._validate_action_result, tracker_store.create_engine_kwargs, EndpointConfig.session,
            Event.resolve_by_type, DaskGraphRunner.run, TrackerFeaturizer._create_states,
            RulePolicy._get_possible_keys, RemoteAction._action_call_format, run.load_agent_on_start,
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


class Node:
    """A graph node like Rasa's `GraphNode`: called with its parents' (name, output) pairs, or with
    a parent's bare name when dask could not resolve it; records its calls."""

    def __init__(self, name: str, calls: list[str]) -> None:
        self.name, self.calls = name, calls

    def __call__(self, *parents):
        self.calls.append(self.name)
        if any(parent == ("fail", True) for parent in parents):
            raise RuntimeError("a component failed")
        return self.name, [self.name, *parents]


def rasa_like_graph(calls: list[str]) -> dict:
    """The shape `DaskGraphRunner._build_dask_graph` plus `_add_inputs_to_graph` produce: tasks
    of (node, *parent names), inputs as (name, value) tuples, a parent shared by two nodes, and
    a dependency on a name that is not in the graph."""
    return {
        "message": ("message", {"text": "ต่อใบขับขี่"}),
        "tokenizer": (Node("tokenizer", calls), "message"),
        "featurizer": (Node("featurizer", calls), "tokenizer"),
        "extractor": (Node("extractor", calls), "tokenizer", "not_in_graph"),
        "classifier": (Node("classifier", calls), "featurizer", "extractor"),
        "unused": (Node("unused", calls), "message"),
    }


def test_graphs_evaluate_as_dask_evaluates_them():
    import dask

    dask_calls: list[str] = []
    our_calls: list[str] = []
    targets = ["classifier", "extractor"]
    expected = dask.get(rasa_like_graph(dask_calls), targets)
    assert rasa_patches.evaluate_graph(rasa_like_graph(our_calls), targets) == list(expected)
    # Each needed node once; dask also runs nodes no target needs, which Rasa's graphs (cut to the
    # targets' minimal schema) never hold.
    assert sorted(our_calls) == ["classifier", "extractor", "featurizer", "tokenizer"]
    assert sorted(dask_calls) == sorted([*our_calls, "unused"])


def test_a_failing_node_fails_the_run_with_rasas_error():
    class Runner:
        _graph_schema = None

        def _build_dask_graph(self, schema):
            return {"boom": (Node("boom", []), "fail")}

        _add_inputs_to_graph = staticmethod(DaskGraphRunner._add_inputs_to_graph)

    class Schema:
        target_names = ["boom"]

        def minimal_graph_schema(self, targets):
            return self

    runner = Runner()
    runner._graph_schema = Schema()
    run = rasa_patches.sequential_graph_runs(ORIGINAL_RUN)
    with pytest.raises(GraphRunError):
        run(runner, inputs={"fail": True})
    assert run(runner, inputs={"fail": False}) == {"boom": ["boom", ("fail", False)]}


def test_rasa_still_runs_graphs_the_way_the_patch_copies():
    # If Rasa changes how it runs a graph, the patch must be reviewed (and maybe dropped).
    source = inspect.getsource(ORIGINAL_RUN)
    for step in ("minimal_graph_schema(run_targets)", "self._build_dask_graph(minimal_schema)",
                 "self._add_inputs_to_graph(inputs, run_graph)", "dask.get(run_graph, run_targets)",
                 "dict(dask_result)", 'raise GraphRunError("Error running runner.") from e'):
        assert step in source, step


def _session_tracker():
    """A real session (a fixture captured from the Rasa server) and the project's domain."""
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.settings import PROJECT_ROOT

    domain = Domain.load(PROJECT_ROOT / "nlu_data" / "domain.yml")
    captured = json.loads((PROJECT_ROOT / "tests/data/trackers/fee_follow_up.json").read_text(encoding="utf-8"))
    events = captured["tracker"]["events"]
    return DialogueStateTracker.from_dict("citizen", events, domain.slots), events, domain


def test_rasa_still_computes_states_from_the_tracker_alone():
    # The patch reuses states while the tracker's events are the same: Rasa must still derive
    # them from the tracker's events and these arguments only.
    assert "tracker.past_states(" in inspect.getsource(ORIGINAL_CREATE_STATES)


def test_tracker_states_are_reused_for_the_same_tracker_and_events_only():
    from rasa.shared.core.events import ActionExecuted
    from rasa.shared.core.trackers import DialogueStateTracker

    tracker, events, domain = _session_tracker()
    calls = []

    def counted(*args, **kwargs):
        calls.append(1)
        return ORIGINAL_CREATE_STATES(*args, **kwargs)

    create_states = rasa_patches.reused_tracker_states(counted).__func__
    rule_only = {"slots": [], "loops": []}
    expected = ORIGINAL_CREATE_STATES(tracker, domain, rule_only_data=rule_only)
    first = create_states(tracker, domain, rule_only_data=rule_only)
    assert first == expected and len(calls) == 1
    # What Rasa edits in one result (`_choose_last_user_input`) is not in the next.
    for state in first:
        state.get("user", {}).pop("intent", None)
        state.clear()
    first.append({})
    assert create_states(tracker, domain, rule_only_data=rule_only) == expected and len(calls) == 1

    tracker.update(ActionExecuted("action_listen"))  # a new event: computed again
    assert create_states(tracker, domain, rule_only_data=rule_only) == ORIGINAL_CREATE_STATES(
        tracker, domain, rule_only_data=rule_only
    )
    assert len(calls) == 2
    other = DialogueStateTracker.from_dict("citizen", events, domain.slots)  # another tracker
    assert create_states(other, domain, rule_only_data=rule_only) == expected and len(calls) == 3
    assert create_states(other, domain, ignore_rule_only_turns=True, rule_only_data=rule_only) == (
        ORIGINAL_CREATE_STATES(other, domain, ignore_rule_only_turns=True, rule_only_data=rule_only)
    )
    assert len(calls) == 4


def test_the_action_server_gets_past_turns_without_their_words():
    from rasa.shared.core.events import BotUttered, SlotSet
    from rasa_sdk import Tracker

    tracker, _, domain = _session_tracker()
    # this turn's answer so far, after the citizen's latest message: sent as it is
    tracker.update(BotUttered("ค่าธรรมเนียม 1,000 บาท", {"buttons": [{"title": "ขั้นตอน", "payload": "/ask_steps"}]}))
    tracker.update(SlotSet("service", "passport"))
    original = ORIGINAL_CALL_FORMAT(ACTION, tracker, domain)
    withheld = rasa_patches.past_messages_withheld(ORIGINAL_CALL_FORMAT)(ACTION, tracker, domain)

    events, sent = original["tracker"].pop("events"), withheld["tracker"].pop("events")
    assert withheld == original  # slots, latest_message, active loop, domain...: as Rasa sends them
    latest = max(i for i, event in enumerate(events) if event["event"] == "user")
    assert sent[latest:] == events[latest:] and len(sent) == len(events)
    past_bot = [(e, s) for e, s in zip(events[:latest], sent[:latest], strict=True) if e["event"] == "bot"]
    past_user = [(e, s) for e, s in zip(events[:latest], sent[:latest], strict=True) if e["event"] == "user"]
    assert past_bot and past_user
    for event, withheld_event in past_bot:
        assert event["text"] and withheld_event == {**event, "text": None, "data": {}}
    for event, withheld_event in past_user:
        assert event["text"] and withheld_event["text"] is None
        assert withheld_event["parse_data"] == {"intent": event["parse_data"]["intent"], "entities": []}
        assert withheld_event["input_channel"] == event["input_channel"]
    for event, withheld_event in zip(events, sent, strict=True):
        if event["event"] not in ("bot", "user"):
            assert withheld_event == event
    assert len(json.dumps(sent)) < len(json.dumps(events)) / 2

    # What the SDK's tracker tells an action is the same.
    def sdk_view(body: dict) -> tuple:
        sdk = Tracker.from_dict({**body["tracker"], "events": body["events"]})
        return (
            sdk.slots, sdk.latest_message, sdk.active_loop, sdk.latest_action_name, sdk.slots_to_validate(),
            sdk.get_latest_input_channel(), [e["event"] for e in sdk.applied_events()],
            [(e.get("name"), e.get("value")) for e in sdk.events if e["event"] == "slot"],
        )

    assert sdk_view({**withheld, "events": sent}) == sdk_view({**original, "events": events})


def test_rasa_still_sends_the_tracker_the_way_the_patch_expects():
    source = inspect.getsource(ORIGINAL_CALL_FORMAT)
    assert "tracker.current_state(EventVerbosity.ALL)" in source and '"tracker": tracker_state' in source


@pytest.fixture(scope="module")
def rule_policy():
    """The project's rules, learnt by Rasa's RulePolicy (without its slow contradiction check)."""
    import tempfile
    from pathlib import Path

    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.engine.graph import ExecutionContext, GraphSchema
    from rasa.engine.storage.local_model_storage import LocalModelStorage
    from rasa.engine.storage.resource import Resource
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.generator import TrainingDataGenerator
    from rasa.shared.core.training_data.story_reader.yaml_story_reader import YAMLStoryReader
    from rasa.shared.core.training_data.structures import StoryGraph

    from bot.settings import PROJECT_ROOT

    domain = Domain.load(PROJECT_ROOT / "nlu_data" / "domain.yml")
    steps = []
    for path in sorted((PROJECT_ROOT / "nlu_data" / "rules").glob("*.yml")):
        steps += YAMLStoryReader(domain).read_from_file(path)
    trackers = TrainingDataGenerator(StoryGraph(steps), domain, augmentation_factor=0).generate()
    with tempfile.TemporaryDirectory() as storage:
        policy = RulePolicy.create(
            {**RulePolicy.get_default_config(), "check_for_contradictions": False},
            LocalModelStorage(Path(storage)), Resource("rules"), ExecutionContext(GraphSchema({}), "test"),
        )
        policy.train(trackers, domain)
        yield policy, domain


def test_rules_are_narrowed_to_the_same_keys_rasa_finds(rule_policy):
    from rasa.core.policies.rule_policy import RULES, RULES_FOR_LOOP_UNHAPPY_PATH
    from rasa.shared.core.trackers import DialogueStateTracker

    from bot.settings import PROJECT_ROOT

    policy, domain = rule_policy
    narrowed = rasa_patches.narrowed_rule_matching(ORIGINAL_POSSIBLE_KEYS)
    assert len(policy.lookup[RULES]) > 50
    compared = matched = 0
    for path in sorted((PROJECT_ROOT / "tests/data/trackers").glob("*.json")):
        events = json.loads(path.read_text(encoding="utf-8"))["tracker"]["events"]
        for end in range(1, len(events) + 1):
            tracker = DialogueStateTracker.from_dict("citizen", events[:end], domain.slots)
            for use_text in (True, False):
                states = policy._prediction_states(
                    tracker, domain, use_text, rule_only_data=policy._get_rule_only_data()
                )
                for lookup in (policy.lookup[RULES], policy.lookup[RULES_FOR_LOOP_UNHAPPY_PATH]):
                    expected = ORIGINAL_POSSIBLE_KEYS(policy, lookup, states)
                    assert narrowed(policy, lookup, states) == expected, (path.name, end, use_text)
                    compared += 1
                    matched += bool(expected)
    assert compared > 200 and matched > 50  # rules did match: the comparison is not of empty sets

    # Each rule's last state after the earlier states of every rule (so a rule often matches on
    # its last state and fails on an earlier one).
    rules = [policy._rule_key_to_state(key) for key in policy.lookup[RULES]]
    for last in rules:
        for earlier in rules:
            states = [*earlier[:-1], last[-1]]
            assert narrowed(policy, policy.lookup[RULES], states) == ORIGINAL_POSSIBLE_KEYS(
                policy, policy.lookup[RULES], states
            )


def test_rasa_still_matches_rules_the_way_the_patch_narrows():
    source = inspect.getsource(RulePolicy._is_rule_applicable)
    for step in ("if turn_index >= len(reversed_rule_states):\n            return True",
                 "if not rule_previous_action or not current_previous_action:\n            return False",
                 "return self._does_rule_match_state("):
        assert step in source, step
    assert "enumerate(reversed(states))" in inspect.getsource(ORIGINAL_POSSIBLE_KEYS)


def test_the_loaded_model_is_frozen_out_of_garbage_collection():
    agent = object()

    async def load_agent_on_start(*args, **kwargs):  # stands in for Rasa's, which loads the model
        return agent

    frozen_before = gc.get_freeze_count()
    try:
        loaded = asyncio.run(rasa_patches.frozen_loaded_model(load_agent_on_start)("m.tar.gz", None, None, None, None))
        assert loaded is agent
        assert gc.get_freeze_count() > frozen_before
    finally:
        gc.unfreeze()


def test_rasa_still_loads_the_model_where_the_patch_wraps_it():
    # serve_application looks load_agent_on_start up in rasa.core.run when it starts the server
    assert "partial(load_agent_on_start," in inspect.getsource(run.serve_application)
    assert inspect.iscoroutinefunction(ORIGINAL_LOAD_AGENT)
    assert list(inspect.signature(ORIGINAL_LOAD_AGENT).parameters) == [
        "model_path", "endpoints", "remote_storage", "app", "loop",
    ]
