"""NLU benchmark (`make bench-nlu`; Rasa environment): the pipeline against a plain baseline.

Trains the model the way `make train` does (config, domain, nlu_data/nlu and the rules; cold
cache, so the time is the full cost), then parses every example of each evaluation set (none
used for training):

- nlu_heldout.yml: used for error analysis while building, and for the fallback threshold;
- nlu_blind.yml, nlu_blind2.yml: written blind, never tuned against;
- nlu_out_of_domain.yml (and the builder's nlu_out_of_domain_dev.yml): messages about banks,
  phone companies, shopping, health, weather..., on which no `service` may be found.

On the same training data it trains the baseline (TF-IDF over pythainlp `newmm` word
1-2-grams, sublinear tf, scikit-learn `LinearSVC`) and evaluates it on the same sets.

Prints one table (pipeline vs baseline per set: intent accuracy, macro-F1, `service`
accuracy, false service rate, and the pipeline's classifier before its fallback; training time
and parse p95 of both) and writes under
reports/nlu/: summary.md and summary.json; per set <set>/summary.json, intent_report.json,
predictions.jsonl (raw), errors.txt, confusion_matrix.png, baseline_predictions.jsonl; and
fallback/: the coverage/precision curve of the held-out set (curve.csv, curve.png,
choice.json) from which the FallbackClassifier's threshold is chosen.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# A cold, private training cache, so train_seconds is the full cost, not a cache hit.
os.environ["RASA_CACHE_DIRECTORY"] = tempfile.mkdtemp(prefix="bench-nlu-cache-")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

import logging  # noqa: E402

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402
from rasa.core.agent import Agent  # noqa: E402
from rasa.model_training import train, train_nlu  # noqa: E402
from rasa.shared.nlu.training_data.loading import load_data  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score, classification_report, f1_score  # noqa: E402

FALLBACK = "nlu_fallback"
TESTS = Path("nlu_data/tests")
DEFAULT_SETS = [
    TESTS / "nlu_heldout.yml",
    TESTS / "nlu_blind.yml",
    TESTS / "nlu_blind2.yml",
    TESTS / "nlu_out_of_domain.yml",
    TESTS / "nlu_out_of_domain_dev.yml",
]
THRESHOLD_SET = "nlu_heldout"
# The fallback's threshold and ambiguity margin are chosen on the held-out set among these.
# A coarse grid: the held-out set has only a handful of errors, and a fine one would fit them.
THRESHOLDS = [round(t, 2) for t in np.arange(0.0, 0.951, 0.05)]
AMBIGUITY = [0.0, 0.05, 0.1]


def is_out_of_domain(test: Path) -> bool:
    return "out_of_domain" in test.stem


def expected_services(example) -> list[str]:
    return [e["value"] for e in example.get("entities") or [] if e["entity"] == "service"]


# ---------------------------------------------------------------- the pipeline (Rasa model)


async def predict(model_path: str, sets: dict[str, list]) -> dict[str, list[dict]]:
    agent = Agent.load(model_path)
    await agent.parse_message("สวัสดีครับ")  # warm-up: lazy imports and word lists load once
    results = {}
    for name, examples in sets.items():
        rows = []
        for example in examples:
            started = time.perf_counter()
            parsed = await agent.parse_message(example.get("text"))
            elapsed_ms = (time.perf_counter() - started) * 1000
            ranking = [r for r in parsed.get("intent_ranking") or [] if r["name"] != FALLBACK]
            top = ranking[0] if ranking else parsed["intent"]
            rows.append(
                {
                    "text": example.get("text"),
                    "intent": example.get("intent"),
                    "predicted_intent": parsed["intent"]["name"],
                    "confidence": round(parsed["intent"]["confidence"], 4),
                    # the classifier's own choice, before the FallbackClassifier
                    "top_intent": top["name"],
                    "top_confidence": round(top["confidence"], 4),
                    "second_confidence": round(ranking[1]["confidence"], 4) if len(ranking) > 1 else 0.0,
                    "services": expected_services(example),
                    "predicted_services": [e["value"] for e in parsed["entities"] if e["entity"] == "service"],
                    "parse_ms": round(elapsed_ms, 3),
                }
            )
        results[name] = rows
    return results


def train_pipeline(args) -> tuple[str, float, str]:
    workdir = tempfile.mkdtemp(prefix="bench-nlu-")
    started = time.perf_counter()
    if args.nlu_only:
        model = train_nlu(args.config, args.train, workdir, fixed_model_name="bench")
    else:
        result = train(
            args.domain, args.config, [args.train, *args.rules], workdir, fixed_model_name="bench",
            force_training=True,
        )
        model = result.model if result.code == 0 else None
    seconds = time.perf_counter() - started
    return model, seconds, workdir


# ---------------------------------------------------------------- the baseline


def newmm(text: str) -> list[str]:
    from pythainlp.tokenize import word_tokenize

    return [w for w in word_tokenize(text, engine="newmm", keep_whitespace=False) if w.strip()]


def run_baseline(train_examples, sets: dict[str, list]) -> tuple[dict[str, list[dict]], float]:
    """TF-IDF over newmm word 1-2-grams (sublinear tf) + LinearSVC, scikit-learn defaults."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_pipeline
    from sklearn.svm import LinearSVC

    texts = [e.get("text") for e in train_examples]
    labels = [e.get("intent") for e in train_examples]
    started = time.perf_counter()
    model = make_pipeline(
        TfidfVectorizer(tokenizer=newmm, token_pattern=None, ngram_range=(1, 2), sublinear_tf=True),
        LinearSVC(),
    ).fit(texts, labels)
    seconds = time.perf_counter() - started
    results = {}
    for name, examples in sets.items():
        rows = []
        for example in examples:
            began = time.perf_counter()
            [predicted] = model.predict([example.get("text")])
            rows.append(
                {
                    "text": example.get("text"),
                    "intent": example.get("intent"),
                    "predicted_intent": str(predicted),
                    "parse_ms": round((time.perf_counter() - began) * 1000, 3),
                }
            )
        results[name] = rows
    return results, seconds


# ---------------------------------------------------------------- scores and reports


def percentile(values: list[float], q: float) -> float:
    return round(float(np.percentile(values, q)), 2) if values else 0.0


def intent_scores(rows: list[dict]) -> dict:
    truth = [r["intent"] for r in rows]
    predicted = [r["predicted_intent"] for r in rows]
    return {
        "intent_accuracy": round(accuracy_score(truth, predicted), 4),
        "intent_macro_f1": round(
            f1_score(truth, predicted, labels=sorted(set(truth)), average="macro", zero_division=0), 4
        ),
    }


def service_scores(rows: list[dict], out_of_domain: bool) -> dict:
    with_service = [r for r in rows if r["services"]]
    without_service = [r for r in rows if not r["services"]]
    correct = sum(r["predicted_services"][:1] == r["services"][:1] for r in with_service)
    spurious = sum(bool(r["predicted_services"]) for r in without_service)
    scores = {
        "service_examples": len(with_service),
        "service_accuracy": round(correct / len(with_service), 4) if with_service else None,
        "service_spurious_on_examples_without_one": spurious,
    }
    if out_of_domain:
        scores["false_service_rate"] = round(spurious / max(1, len(without_service)), 4)
        scores["answered_as_in_domain"] = sum(
            r["predicted_intent"] not in ("out_of_scope", FALLBACK) for r in rows
        )
    return scores


def write_set_report(name: str, rows: list[dict], baseline_rows: list[dict], out: Path, summary: dict) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    truth = [r["intent"] for r in rows]
    predicted = [r["predicted_intent"] for r in rows]
    report = classification_report(truth, predicted, output_dict=True, zero_division=0)
    (out / "intent_report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    for file, data in (("predictions.jsonl", rows), ("baseline_predictions.jsonl", baseline_rows)):
        with (out / file).open("w", encoding="utf-8") as raw:
            for row in data:
                raw.write(json.dumps(row, ensure_ascii=False) + "\n")
    errors = [
        f"{r['intent']} -> {r['predicted_intent']} ({r['confidence']}): {r['text']}"
        for r in rows
        if r["intent"] != r["predicted_intent"]
    ] + [
        f"service {r['services']} -> {r['predicted_services']}: {r['text']}"
        for r in rows
        if r["predicted_services"][:1] != r["services"][:1]
    ]
    (out / "errors.txt").write_text("\n".join(errors) + "\n", encoding="utf-8")
    labels = sorted(set(truth) | set(predicted))
    figure, axes = plt.subplots(figsize=(12, 12))
    ConfusionMatrixDisplay.from_predictions(
        truth, predicted, labels=labels, ax=axes, xticks_rotation="vertical", colorbar=False
    )
    axes.set_title(f"Intent confusion on {name} (accuracy {summary['pipeline']['intent_accuracy']:.3f})")
    figure.tight_layout()
    figure.savefig(out / "confusion_matrix.png", dpi=110)
    plt.close(figure)


def fallback_curve(rows: list[dict], out: Path, configured: dict) -> dict:
    """Coverage and precision of the classifier's own choice as the fallback threshold grows.

    A message goes to the fallback when its top confidence is under the threshold, or the
    top two are closer than the ambiguity margin. The chosen pair maximises the net benefit on
    the held-out set: wrong answers turned into a fallback minus right answers lost to it (a
    wrong answer counts as much as a needless "please rephrase"; for an out_of_scope message
    the fallback is as good as the right answer); ties go to the lower threshold and margin,
    that is, to answering.
    """
    out.mkdir(parents=True, exist_ok=True)
    right = np.array([r["top_intent"] == r["intent"] for r in rows])
    fallback_ok = np.array([r["intent"] == "out_of_scope" for r in rows])
    top = np.array([r["top_confidence"] for r in rows])
    margin = top - np.array([r["second_confidence"] for r in rows])
    grid = []
    for ambiguity in AMBIGUITY:
        for threshold in THRESHOLDS:
            answered = (top >= threshold) & (margin >= ambiguity)
            grid.append(
                {
                    "threshold": threshold,
                    "ambiguity_threshold": ambiguity,
                    "coverage": round(float(answered.mean()), 4),
                    "precision": round(float(right[answered].mean()), 4) if answered.any() else 1.0,
                    "accuracy": round(float((right & answered).mean()), 4),
                    "errors_caught": int((~right & ~answered).sum()),
                    "right_lost": int((right & ~answered & ~fallback_ok).sum()),
                }
            )
    for point in grid:
        point["net_benefit"] = point["errors_caught"] - point["right_lost"]
    best = max(grid, key=lambda p: (p["net_benefit"], -p["threshold"], -p["ambiguity_threshold"]))
    with (out / "curve.csv").open("w") as csv:
        keys = list(grid[0])
        csv.write(",".join(keys) + "\n")
        for point in grid:
            csv.write(",".join(str(point[k]) for k in keys) + "\n")
    figure, axes = plt.subplots(figsize=(8, 5))
    for ambiguity in AMBIGUITY:
        points = [p for p in grid if p["ambiguity_threshold"] == ambiguity]
        axes.plot([p["threshold"] for p in points], [p["precision"] for p in points],
                  label=f"precision (ambiguity {ambiguity})")
        axes.plot([p["threshold"] for p in points], [p["coverage"] for p in points], linestyle="--",
                  label=f"coverage (ambiguity {ambiguity})")
    axes.axvline(best["threshold"], color="black", linewidth=0.8)
    axes.set_xlabel("fallback threshold (top intent confidence)")
    axes.set_ylim(0.5, 1.01)
    axes.set_title(f"Held-out coverage/precision; chosen {best['threshold']} / {best['ambiguity_threshold']}")
    axes.legend(fontsize=7)
    figure.tight_layout()
    figure.savefig(out / "curve.png", dpi=110)
    plt.close(figure)
    choice = {"chosen": best, "configured": configured, "rule": fallback_curve.__doc__.split("\n\n")[1]}
    (out / "choice.json").write_text(json.dumps(choice, indent=2) + "\n")
    return choice


def configured_fallback(config_path: str) -> dict:
    pipeline = yaml.safe_load(Path(config_path).read_text()).get("pipeline") or []
    for component in pipeline:
        if component.get("name") == "FallbackClassifier":
            return {k: component.get(k) for k in ("threshold", "ambiguity_threshold")}
    return {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="nlu_data/config.yml")
    parser.add_argument("--domain", default="nlu_data/domain.yml")
    parser.add_argument("--train", default="nlu_data/nlu")
    parser.add_argument("--rules", nargs="*", default=["nlu_data/rules"])
    parser.add_argument("--nlu-only", action="store_true", help="train the NLU only (faster; not the full cost)")
    parser.add_argument("--test", nargs="+", type=Path, default=DEFAULT_SETS)
    parser.add_argument("--out", type=Path, default=Path("reports/nlu"))
    args = parser.parse_args()
    logging.getLogger("rasa").setLevel(logging.WARNING)
    import structlog  # Rasa's parse log would print every message

    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))

    missing = [t for t in args.test if not t.exists()]
    for test in missing:
        print(f"note: {test} not found, skipped", file=sys.stderr)
    tests = [t for t in args.test if t.exists()]
    sets = {t.stem: load_data(str(t)).intent_examples for t in tests}
    train_examples = [e for e in load_data(args.train).intent_examples if e.get("text") and e.get("intent")]

    model, train_seconds, workdir = train_pipeline(args)
    try:
        if not model:
            print("error: training failed", file=sys.stderr)
            return 1
        results = asyncio.run(predict(model, sets))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(os.environ["RASA_CACHE_DIRECTORY"], ignore_errors=True)
    baseline, baseline_seconds = run_baseline(train_examples, sets)

    all_parse = [r["parse_ms"] for rows in results.values() for r in rows]
    all_baseline = [r["parse_ms"] for rows in baseline.values() for r in rows]
    overall = {
        "config": args.config,
        "training": "nlu only" if args.nlu_only else "full (nlu + rules), as make train",
        "train_examples": len(train_examples),
        "pipeline_train_seconds": round(train_seconds, 1),
        "baseline_train_seconds": round(baseline_seconds, 1),
        "pipeline_parse_ms_p50": percentile(all_parse, 50),
        "pipeline_parse_ms_p95": percentile(all_parse, 95),
        "baseline_predict_ms_p95": percentile(all_baseline, 95),
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    per_set = {}
    for test in tests:
        name = test.stem
        rows, base_rows = results[name], baseline[name]
        summary = {
            "test": str(test),
            "test_examples": len(rows),
            "pipeline": {
                **intent_scores(rows),
                # the classifier's own top intent, before the FallbackClassifier
                "classifier_top1_accuracy": round(float(np.mean([r["top_intent"] == r["intent"] for r in rows])), 4),
                "fallbacks": sum(r["predicted_intent"] == FALLBACK for r in rows),
                **service_scores(rows, is_out_of_domain(test)),
                "parse_ms_p50": percentile([r["parse_ms"] for r in rows], 50),
                "parse_ms_p95": percentile([r["parse_ms"] for r in rows], 95),
            },
            "baseline": intent_scores(base_rows),
        }
        write_set_report(name, rows, base_rows, args.out / name, summary)
        per_set[name] = summary
    fallback = None
    if THRESHOLD_SET in results:
        fallback = fallback_curve(results[THRESHOLD_SET], args.out / "fallback", configured_fallback(args.config))

    table = render_table(overall, per_set, fallback)
    print("\n" + table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "summary.md").write_text(table + "\n", encoding="utf-8")
    (args.out / "summary.json").write_text(
        json.dumps({"overall": overall, "sets": per_set, "fallback": fallback}, indent=2, ensure_ascii=False) + "\n"
    )
    print(f"\nreports written to {args.out}/")
    return 0


def render_table(overall: dict, per_set: dict, fallback: dict | None) -> str:
    def fmt(value) -> str:
        return "–" if value is None else (f"{value:.3f}" if isinstance(value, float) else str(value))

    lines = [
        "| set | n | pipeline acc | pipeline macro-F1 | baseline acc | baseline macro-F1 "
        "| service acc | false service rate | classifier top-1 acc (fallbacks) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, s in per_set.items():
        p, b = s["pipeline"], s["baseline"]
        lines.append(
            f"| {name} | {s['test_examples']} | {fmt(p['intent_accuracy'])} | {fmt(p['intent_macro_f1'])} "
            f"| {fmt(b['intent_accuracy'])} | {fmt(b['intent_macro_f1'])} | {fmt(p['service_accuracy'])} "
            f"| {fmt(p.get('false_service_rate'))} | {fmt(p['classifier_top1_accuracy'])} ({p['fallbacks']}) |"
        )
    lines += [
        "",
        f"training ({overall['training']}): pipeline {overall['pipeline_train_seconds']} s, "
        f"baseline {overall['baseline_train_seconds']} s; {overall['train_examples']} examples",
        f"parse p50 / p95: pipeline {overall['pipeline_parse_ms_p50']} / {overall['pipeline_parse_ms_p95']} ms "
        f"(Agent.parse_message), baseline predict p95 {overall['baseline_predict_ms_p95']} ms; "
        f"max RSS {overall['max_rss_mib']} MiB",
    ]
    if fallback:
        chosen, configured = fallback["chosen"], fallback["configured"]
        lines.append(
            f"fallback from the held-out curve: threshold {chosen['threshold']}, ambiguity "
            f"{chosen['ambiguity_threshold']} (coverage {chosen['coverage']}, precision {chosen['precision']}, "
            f"net benefit {chosen['net_benefit']}); configured: {configured}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
