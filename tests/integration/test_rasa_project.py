"""Rasa's own checks on the project: data validation and the end-to-end test stories."""

import subprocess

from bot.settings import PROJECT_ROOT

RASA = str(PROJECT_ROOT / ".venv-rasa" / "bin" / "rasa")
DATA = ["--config", "nlu_data/config.yml", "--domain", "nlu_data/domain.yml"]


def _rasa(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [RASA, *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900,
        env={"RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin"},
    )


def test_training_data_and_domain_validate_cleanly():
    result = _rasa("data", "validate", "--fail-on-warnings", *DATA, "--data", "nlu_data/nlu", "nlu_data/rules")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_end_to_end_stories_pass_against_the_trained_model():
    result = _rasa(
        "test", "core", "--model", "models/sla-bot.tar.gz", "--stories", "nlu_data/tests/test_stories.yml",
        "--fail-on-prediction-errors", "--out", "reports/rasa-test-stories",
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
