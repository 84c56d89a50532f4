import subprocess

from bot.settings import PROJECT_ROOT


def test_a_second_run_with_unchanged_data_does_not_retrain():
    # `make test` trained (or found) the model before this suite: it must be up to date now.
    result = subprocess.run(["make", "-q", "train"], cwd=PROJECT_ROOT, capture_output=True, text=True)
    assert result.returncode == 0, "make would retrain although nothing changed"
