"""The real stack for integration tests: Rasa server (trained model), action server, gateway.

Started once per session on free ports with `bot.runtime.stack.Stack`, the same code
`make run` uses. Their output goes to reports/integration-stack.log.
"""

from __future__ import annotations

import secrets
import socket
import pytest

from bot.runtime.stack import Stack
from bot.settings import PROJECT_ROOT, Settings

MODEL = PROJECT_ROOT / "models" / "sla-bot.tar.gz"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def stack() -> Stack:
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `make train` (make test does)")
    settings = Settings(
        rasa_port=_free_port(),
        actions_port=_free_port(),
        gateway_port=_free_port(),
        rasa_token=secrets.token_hex(16),
    )
    log_path = PROJECT_ROOT / "reports" / "integration-stack.log"
    log_path.parent.mkdir(exist_ok=True)
    with log_path.open("w", encoding="utf-8") as log, Stack(settings, output=log, log=log.write) as running:
        yield running


@pytest.fixture(scope="session")
def gateway_url(stack: Stack) -> str:
    return stack.settings.gateway_url


@pytest.fixture(scope="session")
def rasa_url(stack: Stack) -> str:
    return stack.settings.rasa_url
