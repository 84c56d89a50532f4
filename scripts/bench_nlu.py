"""NLU benchmark (`make bench-nlu`; Rasa environment): train, evaluate on the held-out set.

Trains an NLU-only model from nlu_data/nlu with the given config, parses every example of
each test set (never used for training: nlu_heldout.yml, used for error analysis while
building, and nlu_blind.yml, written blind and never tuned against) and prints intent
accuracy, macro-F1, `service` entity accuracy, training time and parse latency. Writes under
reports/nlu/<set>/: summary.json, intent_report.json, predictions.jsonl (raw), errors.txt and
confusion_matrix.png.
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

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from rasa.core.agent import Agent  # noqa: E402
from rasa.model_training import train_nlu  # noqa: E402
from rasa.shared.nlu.training_data.loading import load_data  # noqa: E402
from sklearn.metrics import ConfusionMatrixDisplay, accuracy_score, classification_report, f1_score  # noqa: E402


def _expected_services(example) -> list[str]:
    return [e["value"] for e in example.get("entities") or [] if e["entity"] == "service"]


async def _predict(model_path: str, examples) -> list[dict]:
    agent = Agent.load(model_path)
    rows = []
    for example in examples:
        started = time.perf_counter()
        parsed = await agent.parse_message(example.get("text"))
        elapsed_ms = (time.perf_counter() - started) * 1000
        rows.append(
            {
                "text": example.get("text"),
                "intent": example.get("intent"),
                "predicted_intent": parsed["intent"]["name"],
                "confidence": round(parsed["intent"]["confidence"], 4),
                "services": _expected_services(example),
                "predicted_services": [e["value"] for e in parsed["entities"] if e["entity"] == "service"],
                "parse_ms": round(elapsed_ms, 2),
            }
        )
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="nlu_data/config.yml")
    parser.add_argument("--train", default="nlu_data/nlu")
    parser.add_argument(
        "--test", nargs="+", default=["nlu_data/tests/nlu_heldout.yml", "nlu_data/tests/nlu_blind.yml"]
    )
    parser.add_argument("--out", default="reports/nlu")
    args = parser.parse_args()
    workdir = tempfile.mkdtemp(prefix="bench-nlu-")
    try:
        started = time.perf_counter()
        model = train_nlu(args.config, args.train, workdir, fixed_model_name="bench")
        train_seconds = time.perf_counter() - started
        if not model:
            print("error: training failed", file=sys.stderr)
            return 1
        results = {
            test: asyncio.run(_predict(model, load_data(test).intent_examples)) for test in args.test
        }
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(os.environ["RASA_CACHE_DIRECTORY"], ignore_errors=True)
    train_examples = len(load_data(args.train).intent_examples)
    for test, rows in results.items():
        out = Path(args.out) / Path(test).stem
        summary = _report(
            rows, out, config=args.config, test=test, train_examples=train_examples,
            train_seconds=round(train_seconds, 1),
        )
        print(f"\n== {test}")
        width = max(len(k) for k in summary)
        for key, value in summary.items():
            print(f"{key:<{width}}  {value}")
        print(f"reports written to {out}/")
    return 0


def _report(rows: list[dict], out: Path, **facts) -> dict:
    out.mkdir(parents=True, exist_ok=True)

    truth = [r["intent"] for r in rows]
    predicted = [r["predicted_intent"] for r in rows]
    with_service = [r for r in rows if r["services"]]
    without_service = [r for r in rows if not r["services"]]
    service_correct = sum(r["predicted_services"][:1] == r["services"][:1] for r in with_service)
    spurious = sum(bool(r["predicted_services"]) for r in without_service)
    parse_ms = sorted(r["parse_ms"] for r in rows)
    summary = {
        **facts,
        "test_examples": len(rows),
        "intent_accuracy": round(accuracy_score(truth, predicted), 4),
        "intent_macro_f1": round(f1_score(truth, predicted, labels=sorted(set(truth)), average="macro"), 4),
        "service_accuracy": round(service_correct / max(1, len(with_service)), 4),
        "service_examples": len(with_service),
        "service_spurious_on_examples_without_one": spurious,
        "parse_ms_p50": parse_ms[len(parse_ms) // 2],
        "parse_ms_p95": parse_ms[int(len(parse_ms) * 0.95)],
        "max_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }

    (out / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False) + "\n")
    report = classification_report(truth, predicted, output_dict=True, zero_division=0)
    (out / "intent_report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    with (out / "predictions.jsonl").open("w", encoding="utf-8") as raw:
        for row in rows:
            raw.write(json.dumps(row, ensure_ascii=False) + "\n")
    errors = [
        f"{r['intent']} -> {r['predicted_intent']} ({r['confidence']}): {r['text']}"
        for r in rows
        if r["intent"] != r["predicted_intent"]
    ] + [
        f"service {r['services']} -> {r['predicted_services']}: {r['text']}"
        for r in with_service
        if r["predicted_services"][:1] != r["services"][:1]
    ]
    (out / "errors.txt").write_text("\n".join(errors) + "\n", encoding="utf-8")

    labels = sorted(set(truth) | set(predicted))
    figure, axes = plt.subplots(figsize=(12, 12))
    ConfusionMatrixDisplay.from_predictions(
        truth, predicted, labels=labels, ax=axes, xticks_rotation="vertical", colorbar=False
    )
    axes.set_title(f"Intent confusion on the held-out set (accuracy {summary['intent_accuracy']:.3f})")
    figure.tight_layout()
    figure.savefig(out / "confusion_matrix.png", dpi=110)
    plt.close(figure)
    summary["errors_listed"] = len(errors)
    return summary


if __name__ == "__main__":
    sys.exit(main())
