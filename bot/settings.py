"""All configuration, read once from the environment (and the git-ignored `.env` file).

Standard library only. Names follow the interface contract (../shared/CONTRACT.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping
from zoneinfo import ZoneInfo

PROJECT_ROOT = Path(__file__).resolve().parent.parent
TIMEZONE = ZoneInfo("Asia/Bangkok")


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
    host: str = "127.0.0.1"
    rasa_port: int = 5005
    actions_port: int = 5055
    gateway_port: int = 8000
    rasa_token: str = ""
    catalog_dir: Path = PROJECT_ROOT / "sla_catalog"
    model_dir: Path = PROJECT_ROOT / "models"

    @property
    def rasa_url(self) -> str:
        return f"http://{self.host}:{self.rasa_port}"

    @property
    def actions_url(self) -> str:
        return f"http://{self.host}:{self.actions_port}"

    @property
    def gateway_url(self) -> str:
        return f"http://{self.host}:{self.gateway_port}"

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Settings":
        """Settings from `environ` (default: the process environment over `.env`)."""
        if environ is None:
            environ = {**read_env_file(PROJECT_ROOT / ".env"), **os.environ}
        defaults = cls()

        def get(name: str) -> str | None:
            value = environ.get(name)
            return value if value else None

        def port(name: str, default: int) -> int:
            value = get(name)
            if value is None:
                return default
            if not value.isdigit() or not 0 < int(value) < 65536:
                raise ValueError(f"{name} must be a TCP port number, got {value!r}")
            return int(value)

        return cls(
            host=get("BIND_HOST") or defaults.host,
            rasa_port=port("RASA_PORT", defaults.rasa_port),
            actions_port=port("ACTIONS_PORT", defaults.actions_port),
            gateway_port=port("GATEWAY_PORT", defaults.gateway_port),
            rasa_token=get("RASA_TOKEN") or "",
            catalog_dir=Path(get("SLA_CATALOG_DIR") or defaults.catalog_dir),
            model_dir=Path(get("MODEL_DIR") or defaults.model_dir),
        )
