"""The real stack for integration tests: Rasa server (trained model), action server, gateway.

Started once per session on free ports with `bot.runtime.stack.Stack`, the same code
`make run` uses, so it is supervised the same way. Nothing is written into the checkout:
the generated files (data_dir) and the processes' output (`stack.log`) go to a pytest
temporary directory, e.g. /tmp/pytest-of-<user>/pytest-<n>/stack0/; the `stack_log`
fixture gives its path.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Iterator

import pytest

from bot.runtime.stack import Stack, private_settings
from bot.settings import PROJECT_ROOT
from tests.fakes.line_api import ACCESS_TOKEN as LINE_TOKEN
from tests.fakes.line_api import CHANNEL_SECRET as LINE_SECRET
from tests.fakes.line_api import FakeLineApi
from tests.fakes.telegram_api import FakeTelegramAPI

MODEL = PROJECT_ROOT / "models" / "sla-bot.tar.gz"


@pytest.fixture(scope="session")
def line_api() -> Iterator[FakeLineApi]:
    with FakeLineApi() as fake:
        yield fake


@pytest.fixture(scope="session")
def telegram_api() -> Iterator[FakeTelegramAPI]:
    with FakeTelegramAPI() as fake:
        yield fake


@pytest.fixture(scope="session")
def stack_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("stack")


@pytest.fixture(scope="session")
def stack_log(stack_dir: Path) -> Path:
    return stack_dir / "stack.log"


@pytest.fixture(scope="session")
def stack(stack_dir: Path, stack_log: Path, line_api: FakeLineApi, telegram_api: FakeTelegramAPI) -> Iterator[Stack]:
    if not MODEL.exists():
        pytest.fail(f"no trained model at {MODEL}: run `make train` (make test does)")
    # LINE and Telegram are on, their SDK clients pointed at the fake platform servers.
    settings = dataclasses.replace(
        private_settings(stack_dir / "data"),
        line_channel_secret=LINE_SECRET,
        line_channel_access_token=LINE_TOKEN,
        line_api_base_url=line_api.url,
        **telegram_api.settings_for(),
    )
    with stack_log.open("w", encoding="utf-8") as log, Stack(settings, model_path=MODEL, output=log) as running:
        yield running


@pytest.fixture(scope="session")
def gateway_url(stack: Stack) -> str:
    return stack.settings.gateway_url


@pytest.fixture(scope="session")
def rasa_url(stack: Stack) -> str:
    return stack.settings.rasa_url
