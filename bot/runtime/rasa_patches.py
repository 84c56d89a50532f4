"""Runtime patches to the Rasa server, installed by `bot.runtime.rasa_server` before Rasa starts.

Each patch is small, keeps Rasa's behaviour, and says how to drop it.

`compiled_action_validator` — Rasa 3.6 checks every action server response with
`jsonschema.validate(result, RemoteAction.action_response_format_spec())`
(`RemoteAction._validate_action_result`). `jsonschema.validate` first re-checks the schema
itself against its meta-schema and builds a new validator, on every call: about 19 ms per
custom action on two cores, more than all the rest of the turn. The patch builds the same
validator class for the same schema once and raises the same error (`best_match` of the
errors, with Rasa's own message suffix); a response is first checked event by event against
its own event type's schema, which accepts exactly what the full check accepts, at a fraction
of the cost (the full check tries each event against all 23 types). Drop it when Rasa validates with a compiled
validator itself: delete the call in `install()` and this function; the test
tests/nlu/test_rasa_patches.py compares the patched and the original behaviour and fails if
Rasa's method changes under it.

`sqlite_tracker_store` — Rasa's SQL tracker store on the embedded SQLite file opened and
closed a connection for every read and write (SQLAlchemy 1.4 gives SQLite files no pool) and
committed each turn with a synchronous rollback journal: about 40% of a small-talk turn here.
SQLite engines now keep their connections in a pool (`create_engine_kwargs`, used only by the
SQL tracker store), and each new SQLite connection gets `journal_mode=WAL` and
`synchronous=NORMAL`: a crash of the process loses nothing, a power cut may lose the last
turns. Nothing changes for PostgreSQL. Drop it when the tracker store runs on PostgreSQL only,
or when Rasa pools SQLite connections itself.

`kept_endpoint_sessions` — Rasa opened a new aiohttp session, hence a new TCP connection, for
every call to the action server (`EndpointConfig.request` does `async with self.session()`).
Each endpoint now keeps one session per event loop, and the `async with` no longer closes it,
so calls reuse kept-alive connections. Drop it when Rasa reuses its client session.

`cached_event_types` — to turn a stored or returned event into an object, Rasa looks its class
up by name with `Event.resolve_by_type`, which walks the whole `Event` class tree (with
`inspect.isabstract` on every class) for every single event: about 75 µs each, so loading a
session of 100 events cost 7 ms, on every turn. The patch resolves through a dictionary built
from the same walk, in the same order (the first class with that `type_name` wins, as in
Rasa), and walks again when a name is missing (a class defined later). Drop it when Rasa
caches the lookup itself.

`sequential_graph_runs` — Rasa runs its model graphs (the NLU pipeline for each message, the
policies for each prediction: three runs on a custom-action turn) with dask's local scheduler,
and recomputes the subgraph its targets need on every run. On graphs of a dozen nodes, in one
thread, dask's bookkeeping (about 12% of a custom-action turn in the Rasa server's profile)
cost more than most components. The patch keeps Rasa's `DaskGraphRunner.run` and its graphs
(built by Rasa's own `_build_dask_graph`, once per set of targets) but evaluates them with
`evaluate_graph`, which follows dask's rules for these graphs: a task is a tuple whose first
item is callable, a dependency naming a graph key is replaced by that key's result (computed
once), any other value passes as it is, exceptions propagate unchanged; only what the targets
need is run (dask runs every node, but Rasa's graphs hold nothing else). It leaves out the
debug line that formatted every run's inputs (the whole tracker) whether or not debug logging
was on. Drop it when Rasa no longer runs graphs through dask, or the cost no longer shows in a
profile.

`reused_tracker_states` — each time the rule policy predicts right after a citizen's message,
it turns the whole session into states twice (`TrackerFeaturizer._create_states`, which
replays every event of the session): once to match rules on the message's text, once on its
intent, from the same tracker (Rasa then removes the text or the intent from the last state).
The patch keeps the last result (one, for the tracker it came from, as long as that tracker
has the same events) and hands out copies down to the states' values, so what Rasa removes
from one copy is still in the next. That is one replay of three on a custom-action turn (0.3 ms
at a session's tenth turn, more later in it). Drop it when Rasa computes the states once per
prediction.

`narrowed_rule_matching` — to predict, the rule policy checks each of its rules (105 here)
against the conversation's current state (`RulePolicy._get_possible_keys`), then checks the rules
left against each earlier state of the session, back to its start. Two shortcuts, same result:
a rule whose last state names a previous action (most do) cannot match a current state with
another previous action, so only rules naming the current one, or none, are checked in full; and
a rule of n states matches whatever came more than n states back (Rasa's check returns True
there), so the walk stops once it is past the longest rule left. 0.16 -> 0.10 ms a call on a
28-state session, three calls on a custom-action turn. Drop it when Rasa indexes its rules.

`past_messages_withheld` — with every custom action Rasa sends the action server the whole
session: at a conversation's thirteenth turn 119 KB of events, 71% of them the bot's past
answers and most of the rest the NLU details of the citizen's past messages, which Rasa encodes
and the action server decodes on every call (0.8 ms of CPU between the two, hot). Events before
the citizen's latest message now go without their words: a past answer keeps its type, time and
metadata but not its text and data; a past message keeps its type, time, channel and intent but
not its text, entities or the rest of its NLU output. The order and number of events, every slot
event, the current turn's events and `latest_message` are as Rasa sends them: the SDK's tracker
methods (`slots_to_validate`, `active_loop`, `get_latest_input_channel`...) and our actions
(which read slots, the latest message and the order of slot and message events) answer the same.
The same events are 28 KB (encoding and decoding them takes 0.45 ms less), and citizens' past
words no longer leave the Rasa server with every call (PDPA: data minimisation). Drop it when an
action needs the words of past turns, or Rasa sends a lighter tracker itself.

`frozen_loaded_model` — once the model is loaded, the Rasa server holds about a million Python
objects that live as long as it does (TensorFlow, the model, the Thai dictionary). Python's
collector walks all of them in every full collection, which it runs after every few hundred
thousand new objects: under load once every 1,500 turns or so, 320–370 ms each here, during
which every request in flight waits (p99 at 20 clients 520–580 ms against a p50 of 120 ms).
The patch runs Rasa's `load_agent_on_start` and then moves everything alive into the
collector's permanent generation (`gc.freeze()`, after one full collection), so later
collections walk only what was made since. A model loaded later through the HTTP API is not
frozen. Drop it when the Rasa server runs on a Python whose collector does not stop the world
for the whole heap.
"""

from __future__ import annotations

import functools
import gc
import logging
import sqlite3
from typing import Any, Awaitable, Callable, Optional

logger = logging.getLogger(__name__)
PATCHED_MARK = "_sla_bot_compiled_validator"


def compiled_action_validator() -> Callable[[Any, dict], bool]:
    """Rasa's `_validate_action_result`, with the validator compiled once.

    Each event of a response is checked against the schema of its own event type first: Rasa's
    schema lists the 23 event types under `oneOf`, so a full check tries every event against all
    23 (about a millisecond per response here). Only when that quick check fails does the full
    check run, so a rejected response gets exactly Rasa's error, and a response the quick check
    accepts is one the full check accepts (the event types are told apart by a distinct `const`,
    verified when the validator is built)."""
    from jsonschema import ValidationError, exceptions, validators
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.constants import DOCS_BASE_URL

    spec = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(spec)
    validator_class.check_schema(spec)
    validator = validator_class(spec)
    quick = _quick_event_check(spec, validator_class)

    def _validate_action_result(self: RemoteAction, result: dict) -> bool:
        if quick is not None and quick(result):
            return True
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


def _quick_event_check(spec: dict, validator_class: Any) -> Callable[[Any], bool] | None:
    """True only for responses `spec` accepts, checking each event against its own type's schema;
    None when `spec` is not shaped as expected (then every response gets the full check)."""
    try:
        events = spec["properties"]["events"]
        items = events["items"]
        names = [alternative["properties"]["event"]["const"] for alternative in items["oneOf"]]
    except (KeyError, TypeError):
        return None
    if len(set(names)) != len(names) or set(events) != {"type", "items"}:
        return None
    common = {key: value for key, value in items.items() if key != "oneOf"}
    by_name = {
        name: validator_class({**common, "allOf": [alternative]})
        for name, alternative in zip(names, items["oneOf"], strict=True)
    }
    outer = validator_class({**spec, "properties": {**spec["properties"], "events": {"type": "array"}}})

    def quick(result: Any) -> bool:
        if not outer.is_valid(result):
            return False
        for event in result.get("events") or ():
            name = event.get("event") if isinstance(event, dict) else None
            check = by_name.get(name) if isinstance(name, str) else None
            if check is None or not check.is_valid(event):
                return False
        return True

    return quick


def set_sqlite_pragmas(dbapi_connection: Any, connection_record: Any) -> None:
    """SQLAlchemy "connect" listener: WAL and synchronous=NORMAL on SQLite connections only."""
    if isinstance(dbapi_connection, sqlite3.Connection):
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()


def pooled_sqlite_engine_kwargs(original: Callable[[Any], dict]) -> Callable[[Any], dict]:
    """Rasa's `create_engine_kwargs`, with a connection pool for SQLite URLs."""
    from sqlalchemy.pool import QueuePool

    def create_engine_kwargs(url: Any) -> dict:
        kwargs = original(url)
        if str(url).startswith("sqlite"):
            # The pool hands a connection to one thread at a time; Rasa may call from two.
            kwargs.update(poolclass=QueuePool, connect_args={"check_same_thread": False})
        return kwargs

    setattr(create_engine_kwargs, PATCHED_MARK, True)
    return create_engine_kwargs


class _KeptSession:
    """An aiohttp session that `async with` hands out without closing it afterwards."""

    def __init__(self, session: Any) -> None:
        self.session = session

    async def __aenter__(self) -> Any:
        return self.session

    async def __aexit__(self, *exc: object) -> bool:
        return False


def kept_endpoint_sessions(original: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """Rasa's `EndpointConfig.session`, returning one kept session per endpoint and event loop."""
    import asyncio

    def session(self: Any) -> _KeptSession:
        loop = asyncio.get_running_loop()
        kept = getattr(self, "_sla_bot_session", None)
        if kept is None or kept[0] is not loop or kept[1].closed:
            kept = (loop, original(self))
            self._sla_bot_session = kept
        return _KeptSession(kept[1])

    setattr(session, PATCHED_MARK, True)
    return session


def cached_event_types(original: Callable[..., Any]) -> Callable[..., Any]:
    """Rasa's `Event.resolve_by_type`, resolving through a dictionary of the event classes."""
    from rasa.shared.core.events import Event
    from rasa.shared.utils.common import all_subclasses

    by_name: dict[str, Any] = {}

    def build() -> None:
        by_name.clear()
        for cls in all_subclasses(Event):
            by_name.setdefault(cls.type_name, cls)

    def resolve_by_type(type_name: str, default: Any = None) -> Any:
        cls = by_name.get(type_name)
        if cls is None:
            build()
            cls = by_name.get(type_name)
        return cls if cls is not None else original(type_name, default)

    build()
    setattr(resolve_by_type, PATCHED_MARK, True)
    return staticmethod(resolve_by_type)


def evaluate_graph(graph: dict[str, Any], targets: list[str]) -> list[Any]:
    """The results of `targets` in a dask graph, as `dask.get(graph, targets)` gives them, for
    graphs whose tasks' arguments are graph keys or plain values (those Rasa builds)."""
    results: dict[str, Any] = {}

    def result(key: str) -> Any:
        if key not in results:
            task = graph[key]
            if isinstance(task, tuple) and task and callable(task[0]):
                func, *args = task
                task = func(*(result(a) if isinstance(a, str) and a in graph else a for a in args))
            results[key] = task
        return results[key]

    return [result(target) for target in targets]


def sequential_graph_runs(original: Callable[..., Any]) -> Callable[..., Any]:
    """Rasa's `DaskGraphRunner.run`: the same graph and errors, evaluated without dask's scheduler."""
    from rasa.engine.exceptions import GraphRunError

    def run(self: Any, inputs: dict[str, Any] | None = None, targets: list[str] | None = None) -> dict[str, Any]:
        run_targets = targets if targets else self._graph_schema.target_names
        graphs = self.__dict__.setdefault("_sla_bot_graphs", {})
        graph = graphs.get(tuple(run_targets))
        if graph is None:
            graph = self._build_dask_graph(self._graph_schema.minimal_graph_schema(run_targets))
            graphs[tuple(run_targets)] = graph
        graph = dict(graph)  # the inputs of this run go into a copy
        if inputs:
            self._add_inputs_to_graph(inputs, graph)
        try:
            return dict(evaluate_graph(graph, run_targets))
        except RuntimeError as e:
            raise GraphRunError("Error running runner.") from e

    setattr(run, PATCHED_MARK, True)
    return run


def reused_tracker_states(original: Callable[..., Any]) -> Any:
    """Rasa's `TrackerFeaturizer._create_states`, reusing its last result for an unchanged tracker."""
    last: list[tuple] = []  # (tracker, domain, last event, other arguments, states)

    def create_states(
        tracker: Any, domain: Any, omit_unset_slots: bool = False, ignore_rule_only_turns: bool = False,
        rule_only_data: dict[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        events = tracker.events
        last_event = events[-1] if events else None
        arguments = (len(events), omit_unset_slots, ignore_rule_only_turns, rule_only_data)
        if not (last and last[0][0] is tracker and last[0][1] is domain and last[0][2] is last_event
                and last[0][3] == arguments):
            states = original(
                tracker, domain, omit_unset_slots=omit_unset_slots,
                ignore_rule_only_turns=ignore_rule_only_turns, rule_only_data=rule_only_data,
            )
            last[:] = [(tracker, domain, last_event, arguments, states)]
        # A state maps sub-state names to dicts of strings and tuples: two levels of copies.
        return [{name: dict(sub_state) for name, sub_state in state.items()} for state in last[0][4]]

    setattr(create_states, PATCHED_MARK, True)
    return staticmethod(create_states)


def narrowed_rule_matching(original: Callable[..., set]) -> Callable[..., set]:
    """Rasa's `RulePolicy._get_possible_keys`, checking in full only the rules that can match."""
    from rasa.core.policies.rule_policy import SHOULD_NOT_BE_SET, RulePolicy
    from rasa.shared.core.constants import PREVIOUS_ACTION
    from rasa.shared.nlu.constants import ACTION_NAME

    shapes: dict[str, tuple[Optional[str], int]] = {}  # rule key -> (previous action it needs, length)

    def shape(key: str) -> tuple[Optional[str], int]:
        known = shapes.get(key)
        if known is None:
            states = RulePolicy._rule_key_to_state(key)
            needed = states[-1].get(PREVIOUS_ACTION, {}).get(ACTION_NAME) if states else None
            if not isinstance(needed, str) or needed == SHOULD_NOT_BE_SET:
                needed = None  # checked in full against every state
            known = shapes[key] = (needed, len(states))
        return known

    def get_possible_keys(self: Any, lookup: dict, states: list) -> set:
        if not states:
            return original(self, lookup, states)
        current = states[-1]
        action = (current.get(PREVIOUS_ACTION) or {}).get(ACTION_NAME)
        possible = {
            key for key in lookup
            if shape(key)[0] in (None, action) and self._is_rule_applicable(key, 0, current)
        }
        for turn, state in enumerate(reversed(states[:-1]), start=1):
            if all(shape(key)[1] <= turn for key in possible):
                break  # every rule left matches from here back (Rasa: turn_index >= its length)
            possible = {key for key in possible if self._is_rule_applicable(key, turn, state)}
        return possible

    setattr(get_possible_keys, PATCHED_MARK, True)
    return get_possible_keys


def _without_words(event: dict[str, Any]) -> dict[str, Any]:
    """A past event as the action server gets it: a message's words and NLU details left out."""
    kind = event.get("event")
    if kind == "bot":
        return {**event, "text": None, "data": {}}
    if kind == "user":
        intent = (event.get("parse_data") or {}).get("intent")
        return {**event, "text": None, "parse_data": {"intent": intent, "entities": []}}
    return event


def past_messages_withheld(original: Callable[..., dict]) -> Callable[..., dict]:
    """Rasa's `RemoteAction._action_call_format`, with the words of past turns left out."""

    def action_call_format(self: Any, tracker: Any, domain: Any) -> dict:
        body = original(self, tracker, domain)
        events = body["tracker"]["events"]
        latest = max((i for i, event in enumerate(events) if event.get("event") == "user"), default=0)
        body["tracker"]["events"] = [_without_words(event) for event in events[:latest]] + events[latest:]
        return body

    setattr(action_call_format, PATCHED_MARK, True)
    return action_call_format


def frozen_loaded_model(original: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
    """Rasa's `load_agent_on_start`, then the heap frozen out of later full collections."""

    @functools.wraps(original)
    async def load_agent_on_start(*args: Any, **kwargs: Any) -> Any:
        agent = await original(*args, **kwargs)
        gc.collect()
        gc.freeze()
        logger.info("%d objects of the loaded model frozen out of garbage collection", gc.get_freeze_count())
        return agent

    setattr(load_agent_on_start, PATCHED_MARK, True)
    return load_agent_on_start


def _wrap(owner: Any, attribute: str, patch: Callable[[Any], Any]) -> None:
    """Replace `owner.attribute` with `patch(original)`, unless it is patched already."""
    original = getattr(owner, attribute)
    if not getattr(original, PATCHED_MARK, False):
        setattr(owner, attribute, patch(original))


def install() -> list[str]:
    """Install every patch (idempotent); the names of those installed, for the start-up log."""
    from rasa.core import run, tracker_store
    from rasa.core.actions.action import RemoteAction
    from rasa.core.featurizers.tracker_featurizers import TrackerFeaturizer
    from rasa.core.policies.rule_policy import RulePolicy
    from rasa.engine.runner.dask import DaskGraphRunner
    from rasa.shared.core.events import Event
    from rasa.utils.endpoints import EndpointConfig
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    patches: list[tuple[str, Any, str, Callable[[Any], Any]]] = [  # (name, owner, attribute, patch)
        ("compiled_action_validator", RemoteAction, "_validate_action_result", lambda _: compiled_action_validator()),
        ("sqlite_tracker_store", tracker_store, "create_engine_kwargs", pooled_sqlite_engine_kwargs),
        ("kept_endpoint_sessions", EndpointConfig, "session", kept_endpoint_sessions),
        ("cached_event_types", Event, "resolve_by_type", cached_event_types),
        ("sequential_graph_runs", DaskGraphRunner, "run", sequential_graph_runs),
        ("reused_tracker_states", TrackerFeaturizer, "_create_states", reused_tracker_states),
        ("narrowed_rule_matching", RulePolicy, "_get_possible_keys", narrowed_rule_matching),
        ("past_messages_withheld", RemoteAction, "_action_call_format", past_messages_withheld),
        ("frozen_loaded_model", run, "load_agent_on_start", frozen_loaded_model),
    ]
    for _, owner, attribute, patch in patches:
        _wrap(owner, attribute, patch)
    if not event.contains(Engine, "connect", set_sqlite_pragmas):  # the other half of sqlite_tracker_store
        event.listen(Engine, "connect", set_sqlite_pragmas)
    return [name for name, *_ in patches]
