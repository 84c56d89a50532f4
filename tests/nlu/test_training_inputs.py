"""Every input that shapes the model retrains it: Make's list and the components' fingerprint."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import types
from pathlib import Path

import bot.nlu.components as components

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _make_variable(name: str, cwd: Path = PROJECT_ROOT) -> list[str]:
    result = subprocess.run(
        ["make", "-s", "--no-print-directory", f"print-{name}"], cwd=cwd, capture_output=True, text=True, check=True
    )
    return result.stdout.split()


def test_make_tracks_every_project_module_the_components_import():
    # In a fresh interpreter, so only what the Rasa server itself loads is counted.
    listing = subprocess.run(
        [sys.executable, "-c", "import sys, bot.nlu.components; "
         "print('\\n'.join(m.__file__ for n, m in sys.modules.items() if n.split('.')[0] == 'bot'))"],
        cwd=PROJECT_ROOT, capture_output=True, text=True, check=True,
    ).stdout.split()
    loaded = {str(Path(path).resolve().relative_to(PROJECT_ROOT)) for path in listing}
    assert "bot/text.py" in loaded and "bot/catalog/matching.py" in loaded
    assert loaded <= set(_make_variable("TRAIN_INPUTS")), loaded - set(_make_variable("TRAIN_INPUTS"))


def test_changing_the_normaliser_makes_make_retrain(tmp_path):
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(PROJECT_ROOT / name, tmp_path / name)
    for name in ("requirements", "scripts", "nlu_data", "sla_catalog", "bot"):
        shutil.copytree(PROJECT_ROOT / name, tmp_path / name, ignore=shutil.ignore_patterns("__pycache__"))
    model = tmp_path / "models" / "sla-bot.tar.gz"
    model.parent.mkdir()
    model.write_bytes(b"a model")
    for venv in (".venv-rasa", ".venv-app"):
        (tmp_path / venv).mkdir()
        (tmp_path / venv / ".installed").touch()
    for path in tmp_path.rglob("*"):
        os.utime(path, (1_000_000, 1_000_000))
    for newer in (tmp_path / ".venv-rasa" / ".installed", tmp_path / ".venv-app" / ".installed", model):
        os.utime(newer, (2_000_000, 2_000_000))

    def up_to_date() -> bool:
        return subprocess.run(["make", "-q", "train"], cwd=tmp_path, capture_output=True).returncode == 0

    assert up_to_date()
    for changed in ("bot/text.py", "bot/tracking.py", "bot/catalog/matching.py", "sla_catalog/agencies.yml"):
        os.utime(tmp_path / changed, (3_000_000, 3_000_000))
        assert not up_to_date(), f"changing {changed} must retrain"
        os.utime(tmp_path / changed, (1_000_000, 1_000_000))


def test_the_components_fingerprint_follows_the_code(tmp_path, monkeypatch):
    probe = tmp_path / "probe.py"
    probe.write_text("RULE = 1\n")
    module = types.ModuleType("bot._probe")
    module.__file__ = str(probe)
    monkeypatch.setitem(sys.modules, "bot._probe", module)
    before = components.code_fingerprint()
    assert components.ThaiTokenizer.fingerprint_addon({}) == before
    probe.write_text("RULE = 2\n")
    after = components.code_fingerprint()
    assert after != before
    config = {"catalog_dir": str(PROJECT_ROOT / "sla_catalog")}
    assert components.ServiceEntityExtractor.fingerprint_addon(config).endswith(after)
