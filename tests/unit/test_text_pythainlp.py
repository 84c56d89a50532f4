"""Our normaliser puts Thai marks in the same order as pythainlp's, over all the training data.

`bot.text.normalize` is standard-library only, so it re-implements pythainlp's reordering
(`pythainlp.util.reorder_vowels`, which `pythainlp.util.normalize` applies). These tests
run both over every example in nlu_data/nlu/*.yml and nlu_data/tests/*.yml (nlu: blocks and
story user turns, entity annotations made plain), as written and scrambled (marks typed in
the wrong order, see SCRAMBLES in test_text.py), and check that they agree on the reordering.

With ours(x) = normalize(x, lower=False).text, what must agree, for every text x:

1. The reordering itself: ours(x) == ours(reorder_vowels(x)), i.e. letting pythainlp reorder
   the marks first changes nothing in our result, and reorder_vowels(ours(x)) == ours(x), i.e.
   pythainlp's reordering finds nothing left to reorder in our result.
2. The whole normaliser: cleanup(ours(x)) == ours(pythainlp.util.normalize(x)). Both sides have
   then been through the transformations of both normalisers: on the right, the ones only we
   do (Thai digits, letters stretched ช่ายยย, more zero-width characters) by applying ours to
   pythainlp's result; on the left, the ones only pythainlp does by `cleanup` below, which is
   pythainlp's normalize *without* its reordering (duplicate spaces, spaces before marks,
   repeated vowels and signs, a run of different tone marks keeps the last, dangling marks).
   So the two sides can differ only where our reordering differs from pythainlp's.

Differences these texts do not exercise: pythainlp turns only every other lakkhangyao of a
run (ๅๅ) into sara aa and we turn them all (the lakkhangyao scramble avoids runs); pythainlp
joins a mark typed after a space to its consonant before reordering ("ก ่ิ") and we do not.
Both checks fail once our reordering is removed (the last test makes sure of that).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

import bot.text
from bot.settings import PROJECT_ROOT
from bot.text import normalize
from tests.unit.test_text import SCRAMBLES

pythainlp = pytest.importorskip("pythainlp")
from pythainlp.util import normalize as pythainlp_normalize  # noqa: E402
from pythainlp.util import (  # noqa: E402
    remove_dangling,
    remove_dup_spaces,
    remove_spaces_before_marks,
    reorder_vowels,
)

# [text](entity), [text]{"entity": ...}
ENTITY_ANNOTATION = re.compile(r"\[([^\]]*)\](?:\([^)]*\)|\{[^}]*\})")

# pythainlp's remove_repeat_vowels without the reorder_vowels it calls first.
_NOREPEAT = (
    pythainlp.thai_follow_vowels
    + pythainlp.thai_lead_vowels
    + pythainlp.thai_above_vowels
    + pythainlp.thai_below_vowels
    + "\u0e3a\u0e4c\u0e4d\u0e4e"
)
_NOREPEAT_PATTERNS = [(re.compile(f"({ch}[ ]*)+{ch}"), ch) for ch in _NOREPEAT]
_TONE_RUN = re.compile(f"[{pythainlp.thai_tonemarks}]+")


def cleanup(text: str) -> str:
    """pythainlp.util.normalize without reorder_vowels (see the module docstring)."""
    text = remove_spaces_before_marks(remove_dup_spaces(text))
    for pattern, ch in _NOREPEAT_PATTERNS:
        text = pattern.sub(ch, text)
    text = _TONE_RUN.sub(lambda m: m[0][-1], text)
    return remove_dangling(text)


def ours(text: str) -> str:
    return normalize(text, lower=False).text


def lakkhangyao_for_sara_aa(text: str) -> str:
    """Type lakkhangyao for a sara aa that is not next to another (see the docstring)."""
    return re.sub("(?<!\u0e32)\u0e32(?!\u0e32)", "\u0e45", text)


def training_texts() -> list[str]:
    """Every example (nlu: blocks) and story user turn, with entity annotations made plain."""
    files = sorted((PROJECT_ROOT / "nlu_data" / "nlu").glob("*.yml"))
    files += sorted((PROJECT_ROOT / "nlu_data" / "tests").glob("*.yml"))
    texts: list[str] = []
    for path in files:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8")) or {}
        for block in data.get("nlu") or []:
            for line in str(block.get("examples") or "").splitlines():
                line = line.strip()
                if line.startswith("- "):
                    texts.append(ENTITY_ANNOTATION.sub(r"\1", line[2:]))
        for story in data.get("stories") or []:
            for step in story.get("steps") or []:
                if "user" in step:
                    texts.append(ENTITY_ANNOTATION.sub(r"\1", str(step["user"]).strip()))
    return texts


VARIANTS = {"as_written": lambda text: text, **SCRAMBLES, "lakkhangyao": lakkhangyao_for_sara_aa}


@pytest.fixture(scope="module")
def texts() -> list[str]:
    found = training_texts()
    assert len(found) > 1000
    return found


def disagreements(texts: list[str], variant) -> list[tuple[str, str, str]]:
    """(typed, ours, expected) for each check of the module docstring that fails."""
    bad = []
    for text in texts:
        typed = variant(text)
        result = ours(typed)
        for expected in (ours(reorder_vowels(typed)), reorder_vowels(result)):
            if result != expected:
                bad.append((typed, result, expected))
        result, expected = cleanup(result), ours(pythainlp_normalize(typed))
        if result != expected:
            bad.append((typed, result, expected))
    return bad


@pytest.mark.parametrize("variant", VARIANTS.values(), ids=VARIANTS.keys())
def test_reordering_agrees_with_pythainlp_over_the_training_data(texts, variant):
    changed = sum(variant(text) != text for text in texts)
    assert variant is VARIANTS["as_written"] or changed > 100, "the scramble must change many texts"
    bad = disagreements(texts, variant)
    assert not bad, f"{len(bad)} disagreements, e.g. {bad[:5]}"


def test_these_checks_fail_without_our_reordering(texts, monkeypatch):
    """Remove the reordering rules (keep the first, dropping zero-width characters) and the
    checks above fail for nearly every scrambled text. The exceptions still come out right:
    NFC puts tone marks after below vowels, and nikhahit + sara aa with no tone mark between
    has its own older rule; so split_sara_am only fails where a tone mark is in between."""
    monkeypatch.setattr(bot.text, "_REORDER_RULES", bot.text._REORDER_RULES[:1])
    for name, variant in VARIANTS.items():
        if name == "as_written":
            continue
        scrambled = {variant(text) for text in texts} - set(texts)
        failing = {typed for typed, _, _ in disagreements(sorted(scrambled), lambda text: text)}
        assert failing, name
        if name != "split_sara_am":
            assert len(failing) >= 0.9 * len(scrambled), (name, len(failing), len(scrambled))
