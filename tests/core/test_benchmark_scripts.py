"""The benchmark scripts run and print their numbers (the numbers themselves are not judged
here: BENCHMARKS.md records them)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_engine_benchmark_prints_rates() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_engine.py"), "--seconds", "0.05"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rates = re.findall(r"^(.+?)\s*:\s*([\d,]+) evaluations/s$", result.stdout, re.MULTILINE)
    assert [name for name, _ in rates] == [
        "evaluate",
        "parse_case + evaluate",
        "evaluate + to_json('da')",
    ]
    assert all(int(rate.replace(",", "")) > 0 for _, rate in rates)


def test_web_benchmark_prints_server_times() -> None:
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_web.py"), "--requests", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    rows = re.findall(r"^(.+?)\s+([\d.]+) ms\s+([\d.]+) ms\s+([\d.]+) ms$", result.stdout, re.M)
    assert len(rows) == 11
    assert rows[0][0] == "quick guide"
