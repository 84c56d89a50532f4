"""The front door: finding Python 3.10, the generated secrets, the process commands."""

import os
import stat
import subprocess

from bot.cli import _with_generated_secrets
from bot.runtime.stack import Stack
from bot.settings import GENERATED_SECRETS, PROJECT_ROOT, Settings, read_env_file

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


def test_unset_secrets_are_generated_once_into_a_private_env_file(tmp_path, capsys):
    env_file = tmp_path / ".env"
    settings = _with_generated_secrets(Settings(), env_file)
    assert len(settings.rasa_token) >= 32 and len(settings.web_session_secret) >= 32
    assert settings.rasa_token != settings.web_session_secret
    assert env_file.read_text() == (
        f"RASA_TOKEN={settings.rasa_token}\nWEB_SESSION_SECRET={settings.web_session_secret}\n"
        f"VERIFICATION_SECRET={settings.verification_secret}\n"
    )
    assert stat.S_IMODE(os.stat(env_file).st_mode) == 0o600
    assert read_env_file(env_file) == {name: settings.to_env()[name] for name in GENERATED_SECRETS}
    printed = capsys.readouterr().out
    assert "RASA_TOKEN" in printed and "WEB_SESSION_SECRET" in printed
    assert settings.rasa_token not in printed and settings.web_session_secret not in printed
    assert _with_generated_secrets(settings, env_file) is settings


def test_only_the_missing_secret_is_added_and_the_env_file_made_private(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text("RASA_TOKEN=kept\nGATEWAY_PORT=9000")  # hand-edited: no final newline
    env_file.chmod(0o644)
    settings = _with_generated_secrets(Settings(rasa_token="kept"), env_file)
    assert settings.rasa_token == "kept" and settings.web_session_secret
    assert read_env_file(env_file) == {
        "RASA_TOKEN": "kept", "GATEWAY_PORT": "9000", "WEB_SESSION_SECRET": settings.web_session_secret,
        "VERIFICATION_SECRET": settings.verification_secret,
    }
    assert stat.S_IMODE(os.stat(env_file).st_mode) == 0o600


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


def test_stack_passes_ports_and_keeps_the_rest_api_on(tmp_path):
    settings = Settings(
        rasa_port=6005, actions_port=6055, gateway_port=9000,
        rasa_token="secret", web_session_secret="also-secret", verification_secret="third", data_dir=tmp_path,
    )
    rasa, actions, gateway = Stack(settings).specs()
    assert rasa.name == "rasa" and "--enable-api" in rasa.command
    assert rasa.command[rasa.command.index("--port") + 1] == "6005"
    credentials = (PROJECT_ROOT / "bot" / "runtime" / "credentials.yml").read_text()
    assert "rest:" in credentials
    assert actions.command[-1] == "actions" and gateway.command[-1] == "gateway"
    env = Stack(settings).environment()
    assert (env["RASA_PORT"], env["ACTIONS_PORT"], env["GATEWAY_PORT"]) == ("6005", "6055", "9000")


def test_browser_check_passes_here_and_explains_what_to_run_where_it_cannot_install(tmp_path):
    script = str(PROJECT_ROOT / "scripts" / "ensure-browser")
    assert subprocess.run([script], capture_output=True, text=True).returncode == 0
    # As an unprivileged user on a machine without Chromium: stop at once, with the command.
    env = {"PATH": "/usr/bin:/bin", "CHROMIUM_PATH": str(tmp_path / "no-chromium"), "HOME": str(tmp_path)}
    result = subprocess.run(
        ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", script],
        capture_output=True, text=True, env=env, timeout=60,
    )
    assert result.returncode == 1
    assert "apt-get install -y --no-install-recommends chromium" in result.stderr
    assert "then run make test again" in result.stderr
