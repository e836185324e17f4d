"""The CDS Hooks benchmark runs end to end and prints its numbers (BENCHMARKS.md records
them; a short run on a busy test machine says nothing about the targets)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_benchmark_prints_latency_and_throughput() -> None:
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "benchmarks" / "bench_cdshooks.py"),
            "--seconds",
            "0.3",
            "--rounds",
            "2",
            "--rate",
            "100",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    line = (
        r"^  (.+?)\s*: +([\d,]+) req/s +p50 +[\d.]+ ms +p99 +[\d.]+ ms +errors 0"
        r"  \(rounds: [\d,]+, [\d,]+\)$"
    )
    saturation = re.findall(line, result.stdout, re.MULTILINE)
    assert [name for name, _ in saturation] == [
        "patient-view",
        "bare parse (patient-view body)",
        "order-sign",
        "bare parse (order-sign body)",
    ]
    # The share of the bare endpoint's throughput: the median of the two rounds' shares.
    assert re.search(r"throughput \d+% of bare, median of the rounds \(\d+%, \d+%\)", result.stdout)
    moderate = (
        r"^  (.+?)\s*: p50 +[\d.]+ ms +p99 +[\d.]+ ms +errors 0"
        r"  \(p99 of the rounds: [\d.]+, [\d.]+\)$"
    )
    assert len(re.findall(moderate, result.stdout, re.MULTILINE)) == 4
    assert "p99 at moderate load" in result.stdout
