"""Engine throughput on one core: evaluations per second over a mix of realistic cases.

Run: .venv/bin/python benchmarks/bench_engine.py [--seconds 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import time
from typing import Any

from nkr.guidelines.lumbar_radiculopathy import package

ON = dt.date(2026, 11, 26)

CASES: list[dict[str, Any]] = [
    # In scope, nothing planned.
    {"age": 45, "symptom_onset": "2026-11-01", "signs": ["radicular_leg_pain"]},
    # In scope, MRI and bed rest planned, surgeon due.
    {
        "birth_date": "1970-05-17",
        "symptom_onset": "2026-09-20",
        "signs": ["radicular_leg_pain", "reflex_loss"],
        "severe_disabling_pain": True,
        "non_surgical_treatment": ["supervised_exercise", "manual_mobilisation"],
        "planned": ["mri", "bed_rest"],
    },
    # Past 12 weeks, surgeon overdue.
    {
        "age": 60,
        "symptom_onset": "2026-06-01",
        "signs": ["reduced_strength"],
        "severe_disabling_pain": True,
        "non_surgical_treatment": ["other"],
    },
    # Red flag.
    {
        "age": 52,
        "symptom_onset": "2026-11-20",
        "signs": ["sensory_disturbance"],
        "red_flags": ["cauda_equina"],
    },
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0)
    args = parser.parse_args()
    lr = package()
    cases = [lr.parse_case(c) for c in CASES]

    def rate(fn: Any) -> float:
        for _ in range(2000):  # warm up
            fn()
        count = 0
        start = time.perf_counter()
        deadline = start + args.seconds
        while time.perf_counter() < deadline:
            for _ in range(1000):
                fn()
            count += 1000
        return count / (time.perf_counter() - start)

    i = 0

    def evaluate_one() -> None:
        nonlocal i
        lr.evaluate(cases[i % 4], ON)
        i += 1

    def parse_and_evaluate_one() -> None:
        nonlocal i
        lr.evaluate(lr.parse_case(CASES[i % 4]), ON)
        i += 1

    def evaluate_and_render_one() -> None:
        nonlocal i
        lr.evaluate(cases[i % 4], ON).to_json("da")
        i += 1

    print(f"python {platform.python_version()} on {platform.machine()}, one core")
    print(f"evaluate                  : {rate(evaluate_one):>10,.0f} evaluations/s")
    print(f"parse_case + evaluate     : {rate(parse_and_evaluate_one):>10,.0f} evaluations/s")
    print(f"evaluate + to_json('da')  : {rate(evaluate_and_render_one):>10,.0f} evaluations/s")


if __name__ == "__main__":
    main()
