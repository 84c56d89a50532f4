"""Web-chat latency benchmark (`make bench-chat`; app environment).

Starts the real stack (Rasa server, action server, gateway) on free ports, sends a fixed
mix of citizen questions through the gateway's /api/chat as several simulated citizens, and
prints latency percentiles and throughput. Raw timings go to reports/chat/latency.jsonl.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time

import httpx

from bot.runtime.stack import Stack, private_settings
from bot.settings import PROJECT_ROOT

QUESTIONS = [
    "ต่อภาษีรถยนต์ต้องใช้เอกสารอะไรบ้าง",
    "แล้วค่าธรรมเนียมล่ะ",
    "วันเสาร์เปิดไหม",
    "ทำพาสปอร์ตใช้เวลากี่วัน",
    "บัตรประชาชนหายต้องทำยังไง",
    "เบี้ยคนชราใครมีสิทธิ์บ้าง",
    "ขอใบอนุญาตร้านอาหารทำที่ไหน",
    "ตอนนี้สำนักงานเขตเปิดอยู่ไหม",
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--citizens", type=int, default=10)
    parser.add_argument("--out", default="reports/chat")
    args = parser.parse_args()
    out = PROJECT_ROOT / args.out
    out.mkdir(parents=True, exist_ok=True)
    settings = private_settings(out / "data")
    rows = []
    with (out / "stack.log").open("w") as log, Stack(settings, output=log):
        with httpx.Client(base_url=settings.gateway_url, timeout=30) as warmup:
            warmup.post("/api/chat", json={"message": "สวัสดี"})
        started = time.perf_counter()
        for citizen in range(args.citizens):
            # One client per citizen: the gateway's session cookie is that citizen's identity.
            with httpx.Client(base_url=settings.gateway_url, timeout=30) as client:
                for question in QUESTIONS:
                    t0 = time.perf_counter()
                    response = client.post("/api/chat", json={"message": question})
                    rows.append({"citizen": citizen, "question": question, "status": response.status_code,
                                 "ms": round((time.perf_counter() - t0) * 1000, 2)})
        elapsed = time.perf_counter() - started
    with (out / "latency.jsonl").open("w", encoding="utf-8") as raw:
        for row in rows:
            raw.write(json.dumps(row, ensure_ascii=False) + "\n")
    ms = sorted(r["ms"] for r in rows)
    failures = sum(r["status"] != 200 for r in rows)
    quantile = lambda q: ms[min(len(ms) - 1, int(len(ms) * q))]  # noqa: E731
    print(f"requests     {len(rows)} ({failures} failed), one at a time")
    print(
        f"latency ms   p50 {quantile(0.5):.1f}  p95 {quantile(0.95):.1f}  p99 {quantile(0.99):.1f}"
        f"  max {ms[-1]:.1f}  mean {statistics.mean(ms):.1f}"
    )
    print(f"throughput   {len(rows) / elapsed:.1f} replies/s")
    print(f"raw timings  {out / 'latency.jsonl'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
