"""Rasa's own checks on the project: data validation and the end-to-end test stories."""

import subprocess

from bot.settings import PROJECT_ROOT

RASA = str(PROJECT_ROOT / ".venv-rasa" / "bin" / "rasa")
NLU_DATA = PROJECT_ROOT / "nlu_data"
DATA = ["--config", str(NLU_DATA / "config.yml"), "--domain", str(NLU_DATA / "domain.yml")]


def _rasa(cwd, *args: str) -> subprocess.CompletedProcess:
    """Run Rasa's CLI in a scratch directory, so nothing it writes lands in the checkout."""
    return subprocess.run(
        [RASA, *args], cwd=cwd, capture_output=True, text=True, timeout=900,
        env={
            "RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "2", "PATH": "/usr/bin:/bin",
            "HOME": str(cwd), "PYTHONPATH": str(PROJECT_ROOT),
        },
    )


def test_training_data_and_domain_validate_cleanly(tmp_path):
    result = _rasa(
        tmp_path, "data", "validate", "--fail-on-warnings", *DATA,
        "--data", str(NLU_DATA / "nlu"), str(NLU_DATA / "rules"),
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]


def test_end_to_end_stories_pass_against_the_trained_model(tmp_path):
    result = _rasa(
        tmp_path, "test", "core", "--model", str(PROJECT_ROOT / "models" / "sla-bot.tar.gz"),
        "--stories", str(NLU_DATA / "tests" / "test_stories.yml"),
        "--fail-on-prediction-errors", "--out", str(tmp_path / "results"),
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
