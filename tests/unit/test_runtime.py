"""Starting the three processes: command lines without secrets, hosts, the supervisor.

The supervisor tests run `Stack` on stand-in processes (sleeping Pythons with a health URL
served here), so they check restarts, backoff and stopping in seconds, without Rasa.
"""

from __future__ import annotations

import dataclasses
import inspect
import io
import os
import signal
import stat
import sys
import threading
import time
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator

import pytest
import yaml

from bot import cli
from bot.runtime import rasa_server
from bot.runtime.stack import (
    APP_VENV,
    RASA_VENV,
    TRACKER_STORE,
    Backoff,
    ProcessSpec,
    Stack,
    StackError,
    describe_exit,
    endpoints,
    write_endpoints,
)
from bot.settings import Settings

TOKEN = "rasa-token-0123456789abcdef"
SESSION_SECRET = "web-session-secret-0123456789"
VERIFICATION_SECRET = "verification-secret-0123456789"


def _settings(tmp_path: Path, **changes: object) -> Settings:
    values: dict = dict(
        rasa_port=6005, actions_port=6055, gateway_port=9000,
        rasa_token=TOKEN, web_session_secret=SESSION_SECRET, verification_secret=VERIFICATION_SECRET,
        data_dir=tmp_path / "data",
    )
    values.update(changes)
    return Settings(**values)


# -- the Rasa launcher -------------------------------------------------------------------------


def test_the_launcher_adds_the_token_from_the_environment():
    argv = ["run", "--enable-api", "--port", "5005"]
    assert rasa_server.rasa_arguments(argv, {"RASA_TOKEN": TOKEN}) == [*argv, "--auth-token", TOKEN]


@pytest.mark.parametrize("argv", [["run", "--auth-token", TOKEN], ["run", f"--auth-token={TOKEN}"]])
def test_the_launcher_refuses_a_token_on_the_command_line(argv):
    with pytest.raises(SystemExit, match="RASA_TOKEN in the environment"):
        rasa_server.rasa_arguments(argv, {"RASA_TOKEN": TOKEN})


def test_the_launcher_refuses_to_start_rasa_without_a_token():
    with pytest.raises(SystemExit, match="RASA_TOKEN is empty"):
        rasa_server.rasa_arguments(["run", "--enable-api"], {})


def test_the_launcher_only_starts_the_server():
    with pytest.raises(SystemExit, match="usage"):
        rasa_server.rasa_arguments(["train"], {"RASA_TOKEN": TOKEN})


def test_the_launcher_puts_the_token_into_sys_argv_then_runs_rasa(monkeypatch):
    seen: list[list[str]] = []
    monkeypatch.setattr(rasa_server, "_rasa_cli", lambda: lambda: seen.append(list(sys.argv)))
    monkeypatch.setattr(sys, "argv", ["/x/bot/runtime/rasa_server.py", "run", "--enable-api"])
    rasa_server.main(environ={"RASA_TOKEN": TOKEN})
    assert seen == [["rasa", "run", "--enable-api", "--auth-token", TOKEN]]


def test_the_launcher_documents_itself_as_the_rasa_entry_point():
    doc = rasa_server.__doc__ or ""
    assert "entry point" in doc and "make run" in doc and "production" in doc and "patch" in doc


# -- command lines, hosts, environment ----------------------------------------------------------


def test_no_secret_is_on_any_command_line(tmp_path):
    for spec in Stack(_settings(tmp_path)).specs():
        line = " ".join(spec.command)
        assert TOKEN not in line and SESSION_SECRET not in line and "--auth-token" not in line


def test_rasa_starts_through_the_launcher_with_the_rasa_python(tmp_path):
    rasa = Stack(_settings(tmp_path)).specs()[0]
    assert rasa.command[:4] == [str(RASA_VENV / "bin" / "python"), "-m", "bot.runtime.rasa_server", "run"]


def test_rasa_workers_each_get_a_port_and_the_gateway_knows_them_all(tmp_path):
    settings = Settings.from_env({"RASA_PORT": "6005", "RASA_WORKERS": "2"})
    assert settings.rasa_urls == ["http://127.0.0.1:6005", "http://127.0.0.1:6006"]
    assert settings.rasa_url == "http://127.0.0.1:6005"
    assert Settings.from_env(settings.to_env()).rasa_workers == 2
    with pytest.raises(ValueError, match="RASA_WORKERS"):
        Settings.from_env({"RASA_WORKERS": "0"})
    specs = Stack(_settings(tmp_path, rasa_workers=2)).specs()
    assert [spec.name for spec in specs] == ["rasa", "rasa2", "actions", "gateway"]
    assert [spec.command[spec.command.index("--port") + 1] for spec in specs[:2]] == ["6005", "6006"]
    assert specs[1].health_url.startswith("http://127.0.0.1:6006/status?token=")


def test_each_process_binds_its_own_host(tmp_path, monkeypatch):
    settings = _settings(tmp_path, gateway_host="0.0.0.0", internal_host="127.0.0.2")
    stack = Stack(settings)
    rasa, actions, gateway = stack.specs()
    assert rasa.command[rasa.command.index("--interface") + 1] == "127.0.0.2"
    assert actions.command == [str(APP_VENV / "bin" / "sla-bot"), "actions"]
    assert gateway.command == [str(APP_VENV / "bin" / "sla-bot"), "gateway"]
    env = stack.environment()
    assert (env["INTERNAL_HOST"], env["GATEWAY_HOST"]) == ("127.0.0.2", "0.0.0.0")
    # ... and the two app processes bind what those settings say.
    assert _bound_host(monkeypatch, cli._actions, settings) == "127.0.0.2"
    assert _bound_host(monkeypatch, cli._gateway, settings) == "0.0.0.0"


def _bound_host(monkeypatch: pytest.MonkeyPatch, command, settings: Settings) -> str:
    """The host `command` asks its web server to bind, with the servers replaced by stubs."""
    import rasa_sdk.endpoint
    import uvicorn

    import actions.actions
    import bot.assistant
    import bot.gateway.app

    bound: list[str] = []

    class App:
        config = types.SimpleNamespace()

        def run(self, host: str, port: int, **options: object) -> None:
            bound.append(host)

    monkeypatch.setattr(bot.assistant, "LiveAssistant", lambda directory: None)
    monkeypatch.setattr(actions.actions, "configure", lambda assistant: None)
    monkeypatch.setattr(cli, "_registry", lambda settings, live: None)
    monkeypatch.setattr(rasa_sdk.endpoint, "create_app", lambda *args, **kw: App())
    monkeypatch.setattr(bot.gateway.app, "create_app", lambda settings: None)
    monkeypatch.setattr(uvicorn, "run", lambda app, host, port, **kw: bound.append(host))
    command(settings)
    return bound[0]


def test_children_get_the_settings_through_their_environment(tmp_path):
    settings = _settings(tmp_path)
    env = Stack(settings).environment()
    assert all(env[name] == value for name, value in settings.to_env().items())
    assert env["RASA_TOKEN"] == TOKEN and env["WEB_SESSION_SECRET"] == SESSION_SECRET
    assert env["PYTHONUNBUFFERED"] == "1"


def test_the_endpoints_file_goes_under_the_data_dir(tmp_path):
    settings = _settings(tmp_path)
    stack = Stack(settings)
    assert stack.endpoints_path == settings.data_dir / "endpoints-6005.yml"
    rasa = stack.specs()[0]
    assert rasa.command[rasa.command.index("--endpoints") + 1] == str(stack.endpoints_path)
    write_endpoints(settings, stack.endpoints_path)
    written = yaml.safe_load(stack.endpoints_path.read_text())
    assert written["action_endpoint"] == {"url": "http://127.0.0.1:6055/webhook"}
    assert written["tracker_store"] == {
        "type": TRACKER_STORE, "dialect": "sqlite", "db": str(settings.data_dir / "rasa-tracker.db")
    }
    assert "lock_store" not in written
    assert stat.S_IMODE(stack.endpoints_path.stat().st_mode) == 0o600


def test_postgres_and_redis_settings_move_trackers_and_locks_there(tmp_path):
    settings = dataclasses.replace(
        _settings(tmp_path),
        database_url="postgresql+psycopg2://bot:p%40ss@db.internal:6543/conversations",
        redis_url="redis://:secret@cache.internal:6380/2",
    )
    config = endpoints(settings)
    assert config["tracker_store"] == {
        "type": TRACKER_STORE, "dialect": "postgresql", "url": "db.internal", "port": 6543,
        "db": "conversations", "username": "bot", "password": "p@ss",
    }
    assert config["lock_store"] == {
        "type": "redis", "url": "cache.internal", "port": 6380, "db": 2, "password": "secret", "key_prefix": "sla_bot",
    }


@pytest.mark.parametrize("missing", ["rasa_token", "web_session_secret", "verification_secret"])
def test_the_stack_refuses_to_start_without_its_secrets(tmp_path, missing):
    with pytest.raises(StackError, match=missing.upper()):
        Stack(_settings(tmp_path, **{missing: ""}))


# -- backoff -----------------------------------------------------------------------------------


def test_restart_delays_double_up_to_a_cap():
    backoff, failures, delays = Backoff(first=1, cap=30, stable_seconds=60), 0, []
    for _ in range(8):
        delay, failures = backoff.after_failure(failures, healthy_for=5)
        delays.append(delay)
    assert delays == [1, 2, 4, 8, 16, 30, 30, 30]
    assert backoff.after_failure(10_000, healthy_for=0) == (30, 10_001)


def test_a_process_that_stayed_healthy_restarts_quickly_again():
    backoff = Backoff(first=1, cap=30, stable_seconds=60)
    assert backoff.after_failure(5, healthy_for=60) == (1, 1)
    assert backoff.after_failure(5, healthy_for=59) == (30, 6)


def test_exits_are_described_for_the_log():
    assert describe_exit(3) == "exited with code 3"
    assert describe_exit(-signal.SIGKILL) == "was killed by SIGKILL"


# -- the supervisor, on stand-in processes --------------------------------------------------------


class _Healthy(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def health_url() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Healthy)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/health"
    server.shutdown()
    server.server_close()


class StandIns(Stack):
    """A Stack whose processes are small Pythons: `scripts` maps each name to its code."""

    scripts: dict[str, str] = {}
    health_url = ""
    never_healthy: frozenset[str] = frozenset()

    def specs(self) -> list[ProcessSpec]:
        refused = "http://127.0.0.1:1/"  # nothing listens there
        return [
            ProcessSpec(
                name,
                [sys.executable, "-c", code],
                refused if name in self.never_healthy else self.health_url,
            )
            for name, code in self.scripts.items()
        ]


SLEEP = "import time; time.sleep(600)"


def _stand_ins(
    tmp_path: Path,
    health_url: str,
    scripts: dict[str, str],
    never_healthy: frozenset[str] = frozenset(),
    **options: object,
) -> StandIns:
    model = tmp_path / "model.tar.gz"
    model.write_text("stand-in")
    stack = StandIns(_settings(tmp_path), model_path=model, output=io.StringIO(), **options)
    stack.scripts, stack.health_url, stack.never_healthy = scripts, health_url, never_healthy
    return stack


def _until(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split()[2] == "Z"


def test_a_dead_process_is_restarted_while_the_others_keep_running(tmp_path, health_url):
    lines: list[str] = []
    stack = _stand_ins(
        tmp_path, health_url, {"a": SLEEP, "b": SLEEP, "c": SLEEP},
        log=lines.append, backoff=Backoff(first=0.1, cap=1, stable_seconds=60),
    )
    with stack:
        before = stack.pids()
        os.killpg(before["b"], signal.SIGKILL)
        _until(lambda: stack.pids()["b"] not in (None, before["b"]))
        _until(lambda: "b is healthy again" in lines)
        after = stack.pids()
        assert (after["a"], after["c"]) == (before["a"], before["c"])
        os.killpg(after["b"], signal.SIGKILL)  # again, soon: the delay doubles
        _until(lambda: stack.pids()["b"] not in (None, after["b"]))
        last = stack.pids()
    deaths = [line for line in lines if line.startswith("the b process")]
    assert deaths[0].startswith("the b process was killed by SIGKILL; restarting it in 0.1 s")
    assert deaths[1].startswith("the b process was killed by SIGKILL; restarting it in 0.2 s")
    assert all(_gone(pid) for pids in (before, after, last) for pid in pids.values())


def test_a_process_that_dies_during_start_up_is_a_clear_error(tmp_path, health_url):
    stack = _stand_ins(tmp_path, health_url, {"a": SLEEP, "b": "raise SystemExit(3)"}, never_healthy=frozenset("b"))
    with pytest.raises(StackError, match="the b process exited with code 3 during start-up"):
        stack.start()
    assert stack.pids() == {}


def test_stop_is_prompt_while_a_restart_is_pending(tmp_path, health_url):
    lines: list[str] = []
    stack = _stand_ins(
        tmp_path, health_url, {"a": SLEEP, "b": SLEEP}, log=lines.append, backoff=Backoff(first=30),
    )
    stack.start()
    pids = stack.pids()
    os.killpg(pids["b"], signal.SIGKILL)
    _until(lambda: stack.pids()["b"] is None)
    started = time.monotonic()
    stack.stop()
    assert time.monotonic() - started < 5
    assert all(_gone(pid) for pid in pids.values())
    assert not any(line.startswith("restarting the b process") for line in lines)


def test_secrets_are_masked_in_the_children_output(tmp_path, health_url):
    shout = "import os, time; print(os.environ['RASA_TOKEN'], os.environ['WEB_SESSION_SECRET']); time.sleep(600)"
    stack = _stand_ins(tmp_path, health_url, {"a": shout})
    with stack:
        _until(lambda: "[a      ]" in stack._output.getvalue())
    output = stack._output.getvalue()
    assert "[a      ] *** ***" in output and TOKEN not in output and SESSION_SECRET not in output


def test_the_launcher_builds_the_thai_dictionary_before_rasa_serves():
    """Built on first use, it took the first message after every start about a second."""
    from pythainlp.tokenize import word_dict_trie

    word_dict_trie.cache_clear()
    rasa_server.warm_up_thai_dictionary()
    assert word_dict_trie.cache_info().currsize == 1
    assert "warm_up_thai_dictionary()" in inspect.getsource(rasa_server._rasa_cli)
