"""The front door: finding Python 3.10, the generated Rasa token, the process commands."""

import os
import stat
import subprocess

from bot.cli import _with_rasa_token
from bot.runtime.stack import Stack
from bot.settings import PROJECT_ROOT, Settings

FIND_PYTHON = str(PROJECT_ROOT / "scripts" / "find-python310")


def test_python310_is_found_here():
    result = subprocess.run([FIND_PYTHON], capture_output=True, text=True)
    assert result.returncode == 0
    version = subprocess.run([result.stdout.strip(), "--version"], capture_output=True, text=True).stdout
    assert version.startswith("Python 3.10")


def test_missing_python310_is_a_clear_error_not_a_traceback(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PYTHON": str(tmp_path / "nope"), "HOME": str(tmp_path)}
    result = subprocess.run([FIND_PYTHON], capture_output=True, text=True, env=env)
    assert result.returncode == 1
    assert "Python 3.10 was not found" in result.stderr and "PYTHON=/path/to/python3.10" in result.stderr
    assert "Traceback" not in result.stderr


def test_rasa_token_is_generated_once_into_a_private_env_file(tmp_path):
    env_file = tmp_path / ".env"
    settings = _with_rasa_token(Settings(), env_file)
    assert len(settings.rasa_token) >= 32
    assert env_file.read_text() == f"RASA_TOKEN={settings.rasa_token}\n"
    assert stat.S_IMODE(os.stat(env_file).st_mode) == 0o600
    assert _with_rasa_token(settings, env_file) is settings


def test_settings_from_the_environment_and_bad_ports():
    settings = Settings.from_env({"RASA_PORT": "6005", "GATEWAY_PORT": "9000", "RASA_TOKEN": "t"})
    assert (settings.rasa_port, settings.actions_port, settings.gateway_port) == (6005, 5055, 9000)
    assert settings.rasa_url == "http://127.0.0.1:6005"
    try:
        Settings.from_env({"ACTIONS_PORT": "http"})
    except ValueError as exc:
        assert "ACTIONS_PORT" in str(exc)
    else:
        raise AssertionError("a bad port must be refused")


def test_stack_passes_ports_and_keeps_the_rest_api_on():
    stack = Stack(Settings(rasa_port=6005, actions_port=6055, gateway_port=9000, rasa_token="secret"))
    (rasa_name, rasa, _), (_, actions, _), (_, gateway, _) = stack._commands()
    assert rasa_name == "rasa" and "--enable-api" in rasa and rasa[rasa.index("--port") + 1] == "6005"
    credentials = (PROJECT_ROOT / "bot" / "runtime" / "credentials.yml").read_text()
    assert "rest:" in credentials
    endpoints = PROJECT_ROOT / "var" / "endpoints-6005.yml"
    assert 'url: "http://127.0.0.1:6055/webhook"' in endpoints.read_text()
    assert actions[-1] == "actions" and gateway[-1] == "gateway"
