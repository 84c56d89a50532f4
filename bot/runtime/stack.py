"""Start, supervise and stop the three processes: Rasa server, action server and gateway.

Used by `make run` (through `sla-bot run`) and by the integration tests, so what the tests
exercise is exactly what operators start.

- `start()` launches all three and returns once each answers its health URL, or stops them
  and raises StackError naming the one that did not come up.
- From then on a background supervisor restarts any process that dies, after a growing delay
  (`Backoff`), while the other two keep serving; it logs which process died, why, and when it
  will be started again.
- `stop()` (or leaving the `with` block) stops supervising, then stops all three.

Secrets reach the children only through their environment (`Settings.to_env()`), never a
command line, which every local user can read; they are masked in the children's output,
which is printed with each line prefixed by the process name.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable
from urllib.parse import unquote, urlsplit

import httpx
import yaml

from bot.settings import CHANNEL_SECRETS, GENERATED_SECRETS, PROJECT_ROOT, Settings

RASA_VENV = PROJECT_ROOT / ".venv-rasa"
APP_VENV = PROJECT_ROOT / ".venv-app"
CREDENTIALS = PROJECT_ROOT / "bot" / "runtime" / "credentials.yml"
MODEL_NAME = "sla-bot"
STARTUP_TIMEOUT_SECONDS = 240.0
STOP_TIMEOUT_SECONDS = 15.0
POLL_SECONDS = 0.5
HEALTH_TIMEOUT_SECONDS = 3.0


class StackError(RuntimeError):
    """A process failed to start; the message says which and what to look at."""


@dataclass(frozen=True)
class Backoff:
    """When to restart a process that died: 1 s, 2 s, 4 s ... at most 30 s.

    Doubling keeps a process that dies right away (a port in use, a broken model) from
    spinning; the cap keeps recovery quick once the cause is gone. A process that stayed
    healthy for `stable_seconds` before dying counts as a fresh failure: back to `first`.
    """

    first: float = 1.0
    cap: float = 30.0
    stable_seconds: float = 60.0

    def after_failure(self, failures: int, healthy_for: float) -> tuple[float, int]:
        """(delay, failures in a row now) for a process that died after `healthy_for` s healthy."""
        if healthy_for >= self.stable_seconds:
            failures = 0
        return min(self.cap, self.first * 2 ** min(failures, 32)), failures + 1


@dataclass(frozen=True)
class ProcessSpec:
    """How to start one process, and the URL that answers 200 once it serves."""

    name: str
    command: list[str]
    health_url: str = field(repr=False)  # Rasa's carries the API token


@dataclass
class _Process:
    """One supervised process: its current child and its restart bookkeeping."""

    spec: ProcessSpec
    popen: subprocess.Popen | None = None
    pump: threading.Thread | None = None
    healthy_since: float | None = None  # monotonic time it answered its health URL
    failures: int = 0  # deaths in a row without a stable spell between them
    restart_at: float | None = None  # set while a dead process waits for its restart


def free_port(count: int = 1) -> int:
    """A TCP port free on 127.0.0.1 right now, with the `count - 1` ports after it free too (for
    tests and benchmarks that run their own stack)."""
    while True:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        if port + count - 1 <= 65535 and all(_port_free(port + i) for i in range(1, count)):
            return port


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def private_settings(data_dir: Path, rasa_workers: int = 1) -> Settings:
    """Settings for a throw-away stack: free ports, fresh secrets, files under `data_dir`."""
    return Settings(
        rasa_port=free_port(rasa_workers),
        rasa_workers=rasa_workers,
        actions_port=free_port(),
        gateway_port=free_port(),
        rasa_token=secrets.token_hex(16),
        web_session_secret=secrets.token_hex(32),
        verification_secret=secrets.token_hex(32),
        data_dir=data_dir,
        # Tests and benchmarks send everything from 127.0.0.1: keep the address limit out of the way,
        # and let one test conversation outlast a session rollover within a minute.
        rate_limit_address=1_000_000,
        rate_limit_identity=40,
    )


TRACKER_STORE = "bot.runtime.tracker_store.SessionTrackerStore"


def endpoints(settings: Settings) -> dict[str, Any]:
    """Rasa's endpoints: the action server, the tracker store and, with Redis, the lock store.

    Conversations live in Rasa's SQL tracker store, which loads only the current session:
    an SQLite file under the data directory by default (it survives a restart), the
    PostgreSQL database of `DATABASE_URL` when that is PostgreSQL (shared by replicas).
    With `REDIS_URL`, Rasa's lock store moves to Redis so replicas take turns per conversation.
    """
    config: dict[str, Any] = {"action_endpoint": {"url": f"{settings.actions_url}/webhook"}}
    database = urlsplit(settings.database_url) if settings.database_url else None
    if database and database.scheme.split("+")[0] in ("postgresql", "postgres"):
        config["tracker_store"] = {
            "type": TRACKER_STORE,
            "dialect": "postgresql",
            "url": database.hostname or "127.0.0.1",
            "port": database.port or 5432,
            "db": database.path.lstrip("/"),
            "username": unquote(database.username or ""),
            "password": unquote(database.password or ""),
        }
    else:
        config["tracker_store"] = {
            "type": TRACKER_STORE, "dialect": "sqlite", "db": str(settings.data_dir / "rasa-tracker.db")
        }
    if settings.redis_url:
        redis = urlsplit(settings.redis_url)
        config["lock_store"] = {
            "type": "redis",
            "url": redis.hostname or "127.0.0.1",
            "port": redis.port or 6379,
            "db": int(redis.path.lstrip("/") or 0),
            "password": unquote(redis.password or "") or None,
            "key_prefix": "sla_bot",
        }
    return config


def write_endpoints(settings: Settings, path: Path) -> Path:
    """Rasa's endpoints file (generated from the settings, so under the data dir, mode 0600:
    it may hold a database password)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600, exist_ok=True)
    path.chmod(0o600)
    header = "# Generated by sla-bot from the settings at start-up; edit the settings, not this.\n"
    path.write_text(header + yaml.safe_dump(endpoints(settings), sort_keys=False), encoding="utf-8")
    return path


def describe_exit(returncode: int) -> str:
    """How a child ended, for the log: `exited with code 1` or `was killed by SIGKILL`."""
    if returncode >= 0:
        return f"exited with code {returncode}"
    try:
        return f"was killed by {signal.Signals(-returncode).name}"
    except ValueError:
        return f"was killed by signal {-returncode}"


class Stack:
    """The running assistant. Use as a context manager, or call start() and stop().

    `output` gets the children's lines and, unless `log` is given, the stack's own messages
    (prefixed `[sla-bot]`); `backoff` sets the restart delays.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        model_path: Path | None = None,
        output: IO[str] | None = None,
        log: Callable[[str], None] | None = None,
        backoff: Backoff = Backoff(),
    ) -> None:
        env = settings.to_env()
        missing = [name for name in GENERATED_SECRETS if not env.get(name)]
        if missing:
            raise StackError(f"{' and '.join(missing)} unset; `make run` generates them into .env")
        self.settings = settings
        self.model_path = model_path or settings.model_dir / f"{MODEL_NAME}.tar.gz"
        self.endpoints_path = settings.data_dir / f"endpoints-{settings.rasa_port}.yml"
        self.backoff = backoff
        # Masked in every output line: the generated secrets and the channels' credentials.
        self._secrets = [env[name] for name in (*GENERATED_SECRETS, *CHANNEL_SECRETS) if env.get(name)]
        self._output = output or sys.stdout
        self._log = log or (lambda line: self._emit("sla-bot", line))
        self._output_lock = threading.Lock()
        # Held while the supervisor starts a process or acts on a death, so that stop()
        # never races a restart.
        self._state_lock = threading.Lock()
        self._stopping = threading.Event()
        self._processes: list[_Process] = []
        self._supervisor: threading.Thread | None = None

    def __enter__(self) -> "Stack":
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what runs -------------------------------------------------------------------------

    def specs(self) -> list[ProcessSpec]:
        """The processes in start order: the Rasa server(s) ("rasa", "rasa2", ...), the action
        server and the gateway. No secret in any command: see rasa_server.py."""
        s = self.settings
        cli = str(APP_VENV / "bin" / "sla-bot")
        rasa = [
            ProcessSpec(
                "rasa" if i == 0 else f"rasa{i + 1}",
                [
                    str(RASA_VENV / "bin" / "python"), "-m", "bot.runtime.rasa_server", "run",
                    "--enable-api",
                    "--interface", s.internal_host, "--port", str(s.rasa_port + i),
                    "--model", str(self.model_path),
                    "--endpoints", str(self.endpoints_path),
                    "--credentials", str(CREDENTIALS),
                ],
                f"{url}/status?token={s.rasa_token}",
            )
            for i, url in enumerate(s.rasa_urls)
        ]
        return [
            # The action server and the gateway read their host and port from the settings.
            *rasa,
            ProcessSpec("actions", [cli, "actions"], f"{s.actions_url}/health"),
            ProcessSpec("gateway", [cli, "gateway"], f"{s.gateway_url}/healthz"),
        ]

    def environment(self) -> dict[str, str]:
        """The children's environment: ours, with the settings (secrets included) on top."""
        return {
            **os.environ,
            **self.settings.to_env(),
            "PYTHONUNBUFFERED": "1",
            "RASA_TELEMETRY_ENABLED": "false",
            "TF_CPP_MIN_LOG_LEVEL": "2",
        }

    def pids(self) -> dict[str, int | None]:
        """Each process's current PID by name; None while it waits to be restarted."""
        return {
            p.spec.name: p.popen.pid if p.popen is not None and p.restart_at is None else None
            for p in self._processes
        }

    # -- lifecycle ---------------------------------------------------------------------------

    def migrate(self) -> None:
        """Create or upgrade the database tables the gateway and the action server share."""
        logging.getLogger("alembic").setLevel(logging.WARNING)  # before importing it: it logs at import
        from bot.db import make_engine, migrate

        engine = make_engine(self.settings.database)
        try:
            migrate(engine)
        finally:
            engine.dispose()

    def start(self) -> None:
        """Migrate the database, start all three and wait until each is healthy; on failure stop them."""
        if not self.model_path.exists():
            raise StackError(f"no trained model at {self.model_path}; run `make train` first")
        self.migrate()
        write_endpoints(self.settings, self.endpoints_path)
        self._stopping.clear()
        self._processes = [_Process(spec) for spec in self.specs()]
        try:
            for process in self._processes:
                self._spawn(process)
            self._wait_until_healthy()
        except BaseException:
            self.stop()
            raise
        self._supervisor = threading.Thread(target=self._supervise, name="supervisor", daemon=True)
        self._supervisor.start()

    def wait(self) -> None:
        """Block while the processes are supervised (`sla-bot run`); Ctrl-C interrupts it."""
        supervisor = self._supervisor
        while supervisor is not None and supervisor.is_alive():
            supervisor.join(timeout=1.0)

    def stop(self) -> None:
        """Stop supervising, then SIGTERM each process group and SIGKILL what is left."""
        with self._state_lock:
            self._stopping.set()
        processes, self._processes = self._processes, []
        running = [p.popen for p in processes if p.popen is not None]
        for popen in reversed(running):
            if not _exited(popen):
                _signal_group(popen, signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT_SECONDS
        for popen in running:
            while not _exited(popen) and time.monotonic() < deadline:
                time.sleep(0.05)
            _reap(popen)
        for process in processes:
            if process.pump is not None:
                process.pump.join(timeout=2.0)
        if self._supervisor is not None and self._supervisor is not threading.current_thread():
            self._supervisor.join(timeout=HEALTH_TIMEOUT_SECONDS + 1.0)
        self._supervisor = None

    # -- starting and watching ---------------------------------------------------------------

    def _spawn(self, process: _Process) -> None:
        """Start the process (in its own session, so it and its children stop as one group)."""
        try:
            popen = subprocess.Popen(
                process.spec.command,
                cwd=PROJECT_ROOT,
                env=self.environment(),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                bufsize=1,
                start_new_session=True,
            )
        except OSError as exc:
            raise StackError(f"cannot start the {process.spec.name} process: {exc}") from exc
        process.popen = popen
        process.healthy_since = None
        process.restart_at = None
        process.pump = threading.Thread(
            target=self._pump, args=(process.spec.name, popen), name=f"pump-{process.spec.name}",
            daemon=True,
        )
        process.pump.start()

    def _wait_until_healthy(self) -> None:
        """Return once every process answers its health URL; raise if one dies or times out."""
        deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
        pending = list(self._processes)
        with httpx.Client(timeout=5.0) as client:
            while pending:
                for process in list(pending):
                    assert process.popen is not None
                    if _exited(process.popen):
                        raise StackError(
                            f"the {process.spec.name} process {describe_exit(_reap(process.popen))} "
                            f"during start-up; see its [{process.spec.name}] lines above"
                        )
                    if _healthy(client, process.spec.health_url):
                        process.healthy_since = time.monotonic()
                        pending.remove(process)
                        self._say(f"{process.spec.name} is ready")
                if pending and time.monotonic() > deadline:
                    names = ", ".join(p.spec.name for p in pending)
                    raise StackError(f"not healthy after {STARTUP_TIMEOUT_SECONDS:.0f}s: {names}")
                if pending:
                    time.sleep(POLL_SECONDS)

    def _supervise(self) -> None:
        """Until stop(): restart dead processes and notice when restarted ones are healthy."""
        with httpx.Client(timeout=HEALTH_TIMEOUT_SECONDS) as client:
            while not self._stopping.wait(POLL_SECONDS):
                for process in self._processes:
                    try:
                        self._check(process, client)
                    except Exception as exc:  # a bug here must not end supervision of the rest
                        self._say(f"supervisor error on {process.spec.name}: {exc!r}")

    def _check(self, process: _Process, client: httpx.Client) -> None:
        """One look at one process: act on a death, a due restart, or a first health answer."""
        with self._state_lock:
            if self._stopping.is_set():
                return
            now = time.monotonic()
            if process.restart_at is not None:
                if now >= process.restart_at:
                    self._restart(process, now)
                return
            assert process.popen is not None
            if _exited(process.popen):
                self._schedule_restart(process, now, describe_exit(_reap(process.popen)))
                return
        if process.healthy_since is None and _healthy(client, process.spec.health_url):
            process.healthy_since = time.monotonic()
            self._say(f"{process.spec.name} is healthy again")

    def _schedule_restart(self, process: _Process, now: float, reason: str) -> None:
        """Record a death and when to start the process again, and say so."""
        healthy_for = 0.0 if process.healthy_since is None else now - process.healthy_since
        delay, process.failures = self.backoff.after_failure(process.failures, healthy_for)
        process.restart_at = now + delay
        at = time.strftime("%H:%M:%S", time.localtime(time.time() + delay))
        self._say(
            f"the {process.spec.name} process {reason}; restarting it in {delay:g} s (at {at}; "
            f"failure {process.failures} in a row); the other processes keep running"
        )

    def _restart(self, process: _Process, now: float) -> None:
        """Start a dead process again; if even that fails, back off further."""
        self._say(f"restarting the {process.spec.name} process")
        try:
            self._spawn(process)
        except StackError as exc:
            process.restart_at = None
            self._schedule_restart(process, now, f"could not be started ({exc.__cause__})")

    # -- output ----------------------------------------------------------------------------------

    def _pump(self, name: str, popen: subprocess.Popen) -> None:
        """Copy a child's output to ours, line by line, prefixed with its name."""
        assert popen.stdout is not None
        for line in popen.stdout:
            self._emit(name, line.rstrip("\n"))

    def _say(self, line: str) -> None:
        self._log(self._mask(line))

    def _emit(self, name: str, line: str) -> None:
        with self._output_lock:
            try:
                self._output.write(f"[{name:<7}] {self._mask(line)}\n")
                self._output.flush()
            except ValueError:  # the output was closed under us while stopping
                pass

    def _mask(self, line: str) -> str:
        for secret in self._secrets:
            line = line.replace(secret, "***")
        return line


def _healthy(client: httpx.Client, url: str) -> bool:
    """Whether `url` answers 200 now; a refused or slow connection just means "not yet"."""
    try:
        return client.get(url).status_code == 200
    except httpx.HTTPError:
        return False


def _exited(popen: subprocess.Popen) -> bool:
    """Whether the child has exited, without reaping it.

    An exited but unreaped child keeps its PID, and so its process-group ID, from being
    reused, which makes signalling its group afterwards safe: `os.killpg` then reaches only
    what it left behind, never an unrelated process. `_reap` does both, in that order.
    """
    if popen.returncode is not None:
        return True
    try:
        return os.waitid(os.P_PID, popen.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:  # reaped already
        return True


def _reap(popen: subprocess.Popen) -> int:
    """SIGKILL the child's group (a straggler, or children left holding a port), then reap it."""
    if popen.returncode is None:
        _signal_group(popen, signal.SIGKILL)
        popen.wait()
    return popen.returncode


def _signal_group(popen: subprocess.Popen, sig: signal.Signals) -> None:
    """Signal the process group the child leads (its session), ignoring one already gone."""
    try:
        os.killpg(popen.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
