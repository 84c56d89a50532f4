"""All configuration, read once from the environment (and the git-ignored `.env` file).

Standard library only. Names follow the interface contract (../shared/CONTRACT.md).
The gateway is the only process meant to face the outside: it binds `GATEWAY_HOST`, while
the Rasa server and the action server (whose APIs are internal) bind `INTERNAL_HOST`; both
default to 127.0.0.1 and are set separately on purpose.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from zoneinfo import ZoneInfo

PROJECT_ROOT = Path(__file__).resolve().parent.parent
_TELEGRAM_SECRET = re.compile(r"^[A-Za-z0-9_-]{1,256}$")
TIMEZONE = ZoneInfo("Asia/Bangkok")
# Secrets `make run` generates into `.env` when they are unset.
CHANNEL_SECRETS = ("LINE_CHANNEL_SECRET", "LINE_CHANNEL_ACCESS_TOKEN", "TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_SECRET")
GENERATED_SECRETS = ("RASA_TOKEN", "WEB_SESSION_SECRET", "VERIFICATION_SECRET")


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file; comments and blank lines ignored."""
    values: dict[str, str] = {}
    if not path.exists():
        return values
    for line in path.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, value = line.split("=", 1)
        values[key.strip()] = value.strip().strip('"').strip("'")
    return values


@dataclass(frozen=True)
class Settings:
    gateway_host: str = "127.0.0.1"
    internal_host: str = "127.0.0.1"
    rasa_port: int = 5005
    # Rasa server processes; conversations are spread over them by chat identity (a conversation
    # always goes to the same one). They listen on rasa_port, rasa_port + 1, ...
    rasa_workers: int = 1
    actions_port: int = 5055
    gateway_port: int = 8000
    rasa_token: str = ""
    web_session_secret: str = ""
    # Keys the hashes of citizens' verification digits (bot.casework.verification).
    verification_secret: str = ""
    catalog_dir: Path = PROJECT_ROOT / "sla_catalog"
    model_dir: Path = PROJECT_ROOT / "models"
    data_dir: Path = PROJECT_ROOT / "var"
    database_url: str = ""
    redis_url: str = ""
    # Channels: on when their credentials are set (contract names), off otherwise.
    line_channel_secret: str = ""
    line_channel_access_token: str = ""
    line_api_base_url: str = ""
    telegram_bot_token: str = ""
    telegram_webhook_secret: str = ""
    telegram_api_base_url: str = ""
    # Messages a minute the gateway accepts from one chat identity, and from one IP address.
    rate_limit_identity: int = 20
    rate_limit_address: int = 120

    @property
    def rasa_url(self) -> str:
        """The first Rasa server (the one operators and smoke tests talk to)."""
        return self.rasa_urls[0]

    @property
    def rasa_urls(self) -> list[str]:
        host = _connectable(self.internal_host)
        return [f"http://{host}:{self.rasa_port + i}" for i in range(self.rasa_workers)]

    @property
    def actions_url(self) -> str:
        return f"http://{_connectable(self.internal_host)}:{self.actions_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{_connectable(self.gateway_host)}:{self.gateway_port}"

    @property
    def line_enabled(self) -> bool:
        return bool(self.line_channel_secret and self.line_channel_access_token)

    @property
    def telegram_enabled(self) -> bool:
        return bool(self.telegram_bot_token)

    @property
    def telegram_mode(self) -> str:
        """"webhook" with a webhook secret (Telegram calls us), else "polling" (we ask Telegram)."""
        return "webhook" if self.telegram_webhook_secret else "polling"

    def channel_problems(self) -> list[str]:
        """Half-configured channels, each as the missing variable and why: start-up stops on any."""
        problems = []
        if bool(self.line_channel_secret) != bool(self.line_channel_access_token):
            missing = "LINE_CHANNEL_ACCESS_TOKEN" if self.line_channel_secret else "LINE_CHANNEL_SECRET"
            problems.append(f"{missing} is not set: LINE needs both LINE_CHANNEL_SECRET and LINE_CHANNEL_ACCESS_TOKEN")
        if self.telegram_webhook_secret and not _TELEGRAM_SECRET.match(self.telegram_webhook_secret):
            problems.append(
                "TELEGRAM_WEBHOOK_SECRET must be 1 to 256 characters of A-Z, a-z, 0-9, _ and - (Telegram's rule)"
            )
        if self.telegram_webhook_secret and not self.telegram_bot_token:
            problems.append("TELEGRAM_BOT_TOKEN is not set: TELEGRAM_WEBHOOK_SECRET alone cannot enable Telegram")
        return problems

    @property
    def database(self) -> str:
        """The SQLAlchemy URL: `DATABASE_URL`, else a SQLite file under the data directory."""
        return self.database_url or f"sqlite:///{self.data_dir / 'sla-bot.db'}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Settings from `environ` (default: the process environment over `.env`)."""
        if environ is None:
            environ = {**read_env_file(PROJECT_ROOT / ".env"), **os.environ}
        defaults = cls()

        def get(name: str) -> str | None:
            value = environ.get(name)
            return value if value else None

        def number(name: str, default: int, low: int = 1, high: int = 10**9) -> int:
            value = get(name)
            if value is None:
                return default
            if not value.isdigit() or not low <= int(value) <= high:
                raise ValueError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
            return int(value)

        def port(name: str, default: int) -> int:
            return number(name, default, 1, 65535)

        return cls(
            gateway_host=get("GATEWAY_HOST") or defaults.gateway_host,
            internal_host=get("INTERNAL_HOST") or defaults.internal_host,
            rasa_port=port("RASA_PORT", defaults.rasa_port),
            rasa_workers=number("RASA_WORKERS", defaults.rasa_workers, 1, 16),
            actions_port=port("ACTIONS_PORT", defaults.actions_port),
            gateway_port=port("GATEWAY_PORT", defaults.gateway_port),
            rasa_token=get("RASA_TOKEN") or "",
            web_session_secret=get("WEB_SESSION_SECRET") or "",
            verification_secret=get("VERIFICATION_SECRET") or "",
            catalog_dir=Path(get("SLA_CATALOG_DIR") or defaults.catalog_dir),
            model_dir=Path(get("MODEL_DIR") or defaults.model_dir),
            data_dir=Path(get("DATA_DIR") or defaults.data_dir),
            database_url=get("DATABASE_URL") or "",
            redis_url=get("REDIS_URL") or "",
            line_channel_secret=get("LINE_CHANNEL_SECRET") or "",
            line_channel_access_token=get("LINE_CHANNEL_ACCESS_TOKEN") or "",
            line_api_base_url=get("LINE_API_BASE_URL") or "",
            telegram_bot_token=get("TELEGRAM_BOT_TOKEN") or "",
            telegram_webhook_secret=get("TELEGRAM_WEBHOOK_SECRET") or "",
            telegram_api_base_url=get("TELEGRAM_API_BASE_URL") or "",
            rate_limit_identity=number("RATE_LIMIT_PER_IDENTITY", defaults.rate_limit_identity),
            rate_limit_address=number("RATE_LIMIT_PER_ADDRESS", defaults.rate_limit_address),
        )

    def to_env(self) -> dict[str, str]:
        """The environment variables that reproduce these settings in a child process.

        Unset values are passed as empty strings, which `from_env` reads as unset: a child
        started with explicit settings (tests, benchmarks) must not pick up a `DATABASE_URL`
        from the operator's shell or `.env`.
        """
        env = {
            "GATEWAY_HOST": self.gateway_host,
            "INTERNAL_HOST": self.internal_host,
            "RASA_PORT": str(self.rasa_port),
            "RASA_WORKERS": str(self.rasa_workers),
            "ACTIONS_PORT": str(self.actions_port),
            "GATEWAY_PORT": str(self.gateway_port),
            "RASA_TOKEN": self.rasa_token,
            "WEB_SESSION_SECRET": self.web_session_secret,
            "VERIFICATION_SECRET": self.verification_secret,
            "SLA_CATALOG_DIR": str(self.catalog_dir),
            "MODEL_DIR": str(self.model_dir),
            "DATA_DIR": str(self.data_dir),
            "DATABASE_URL": self.database_url,
            "REDIS_URL": self.redis_url,
            "LINE_CHANNEL_SECRET": self.line_channel_secret,
            "LINE_CHANNEL_ACCESS_TOKEN": self.line_channel_access_token,
            "LINE_API_BASE_URL": self.line_api_base_url,
            "TELEGRAM_BOT_TOKEN": self.telegram_bot_token,
            "TELEGRAM_WEBHOOK_SECRET": self.telegram_webhook_secret,
            "TELEGRAM_API_BASE_URL": self.telegram_api_base_url,
            "RATE_LIMIT_PER_IDENTITY": str(self.rate_limit_identity),
            "RATE_LIMIT_PER_ADDRESS": str(self.rate_limit_address),
        }
        return env


def _connectable(host: str) -> str:
    """The address to connect to for a bind address: 0.0.0.0 / :: mean "this machine"."""
    return {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)
