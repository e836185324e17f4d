"""The audit's two engines on the same export: ``nkr audit`` with DuckDB (the default) and
with Spark in local mode (``--engine spark``, ``local[2]`` unless NKR_SPARK_MASTER says
otherwise), each in its own process. Printed: each engine's wall seconds and peak memory (the
summed PSS of the process and its children: DuckDB's workers, or Spark's JVM and its Python
workers), the ratio of Spark's time to DuckDB's, and whether both wrote the same figures.

Run: .venv/bin/python benchmarks/bench_audit_spark.py [--patients 100000 | --export DIR]
     [--engines duckdb,spark] [--keep]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

# The child runner and its memory sampling (summed PSS) are the audit benchmark's own.
sys.path.insert(0, str(Path(__file__).parent))
from bench_audit import _child


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--export", type=Path, default=None, help="An export of nkr synth.")
    parser.add_argument("--engines", default="duckdb,spark")
    parser.add_argument("--keep", action="store_true", help="Keep what was written.")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="nkr-bench-spark-"))
    try:
        export = args.export
        if export is None:
            export = work / "export"
            synth = ["synth", "--patients", str(args.patients), "--out", str(export)]
            seconds, peak = _child(synth)
            print(f"synth {args.patients:,} patients: {seconds:.1f} s, {peak:.2f} GB")
        size = sum(f.stat().st_size for f in export.iterdir()) / 1e9
        patients = json.loads((export / "ground_truth.json").read_bytes())["patients"]
        print(f"export: {export} ({patients:,} patients, {size:.2f} GB)")
        timings: dict[str, float] = {}
        for engine in args.engines.split(","):
            out = work / f"out-{engine}"
            seconds, peak = _child(["audit", str(export), "--out", str(out), "--engine", engine])
            timings[engine] = seconds
            summary = json.loads((out / "summary.json").read_bytes())
            print(
                f"audit --engine {engine}: {seconds:.1f} s wall, {peak:.2f} GB peak, "
                f"{summary['episodes']:,} episodes, {summary['patients'] / seconds:,.0f} patients/s"
            )
        if {"duckdb", "spark"} <= timings.keys():
            same = (work / "out-duckdb" / "figures.csv").read_bytes() == (
                work / "out-spark" / "figures.csv"
            ).read_bytes()
            print(
                f"spark / duckdb: {timings['spark'] / timings['duckdb']:.1f}x the time; "
                f"figures.csv {'identical' if same else 'DIFFERENT'}"
            )
    finally:
        if args.keep:
            print(f"kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
