"""The population audit end to end: ``nkr synth`` writes N synthetic patients (default
1,000,000), then ``nkr audit`` reads them with the DuckDB engine, each in its own process
(so that peak memory is the audit's own, children included). Printed: the synth's and the
audit's seconds and peak RSS, DuckDB's bare scan of the same files (``count(*)`` over
``read_json`` and over ``read_csv`` of the raw lines, in this process) and the ratio of the
audit's time to the scan's, and the per-core rate of the per-patient step (decode + judge)
measured in this process on the first patients.

Targets (issue 11): the audit under 60 s and 4 GB, at most 3x DuckDB's scan.

Run: .venv/bin/python benchmarks/bench_audit.py [--patients 1000000] [--dir DIR] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb


def _tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    found, todo = [], [pid]
    while todo:
        p = todo.pop()
        found.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return found


def _rss(pids: list[int]) -> int:
    """The processes' memory: their proportional set size (a page shared by a forked worker
    and its parent counts once, in shares), in bytes."""
    total = 0
    for p in pids:
        try:
            for line in Path(f"/proc/{p}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            pass
    return total


# The CPU seconds (user + system) of the last child run, its worker processes included.
CPU: list[float] = []


def _child(args: list[str]) -> tuple[float, float]:
    """Run ``python -m nkr ARGS`` as a child: its wall seconds and the peak of the summed memory
    (PSS) of it and its worker processes (GB, sampled every 50 ms); its CPU seconds go to
    :data:`CPU`."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    began = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "nkr", *args], stdout=subprocess.DEVNULL)
    peak = 0
    while child.poll() is None:
        peak = max(peak, _rss(_tree(child.pid)))
        time.sleep(0.05)
    seconds = time.perf_counter() - began
    now = resource.getrusage(resource.RUSAGE_CHILDREN)
    CPU.append(now.ru_utime + now.ru_stime - used.ru_utime - used.ru_stime)
    if child.returncode != 0:
        raise SystemExit(f"nkr {args[0]} failed ({child.returncode})")
    return seconds, peak / 1e9


def _scan(files: list[str]) -> tuple[float, float]:
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    began = time.perf_counter()
    con.sql(f"SELECT count(*) FROM read_json({files}, format = 'newline_delimited')").fetchall()
    json_seconds = time.perf_counter() - began
    began = time.perf_counter()
    con.sql(
        f"SELECT count(*) FROM read_csv({files}, columns = {{'t': 'VARCHAR'}}, delim = '\x01', "
        "quote = '', escape = '', header = false, auto_detect = false)"
    ).fetchall()
    return json_seconds, time.perf_counter() - began


def _per_patient(export: Path, patients: int = 20_000) -> float:
    """Patients per second of decode + judge on one core (the workers' loop), in CPU time."""
    from nkr._package import registry
    from nkr.audit import _duckdb
    from nkr.audit._judge import Judged, judge_batch
    from nkr.audit._result import Tally
    from nkr.audit._source import source_files

    package = registry().default
    package.indicators  # noqa: B018
    files = source_files(export)
    names = [str(f) for f in files]
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    con.execute(f"CREATE TEMP TABLE lines AS {_duckdb.lines_sql(files)}")
    reader = con.sql(_duckdb.SORTED_SQL).to_arrow_reader(_duckdb.BATCH_ROWS)
    batches = []
    seen = 0
    for batch in _duckdb._batches(reader, Tally(), names):
        batches.append(batch)
        seen += len(set(batch.column(0).to_pylist()))
        if seen >= patients:
            break
    out = Judged()
    began = time.process_time()
    for batch in batches:
        judge_batch(package, batch, names, out)
    return out.patients / (time.process_time() - began)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--patients", type=int, default=1_000_000)
    parser.add_argument("--dir", type=Path, default=None, help="Where to write (default: tmp).")
    parser.add_argument("--keep", action="store_true", help="Keep the export and the outputs.")
    parser.add_argument(
        "--export", type=Path, default=None, help="Audit this export of nkr synth (no synth)."
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="nkr-bench-audit-", dir=args.dir))
    export, out = root / "export", root / "out"
    try:
        synth_s = synth_gb = float("nan")
        if args.export is not None:
            export = args.export
            args.patients = json.loads((export / "ground_truth.json").read_text())["patients"]
        else:
            synth_s, synth_gb = _child(
                ["synth", "--patients", str(args.patients), "--out", str(export), "--seed", "1"]
            )
        size = sum(f.stat().st_size for f in export.glob("*.ndjson")) / 1e9
        audit_s, audit_gb = _child(["audit", str(export), "--out", str(out)])
        files = sorted(str(f) for f in export.glob("*.ndjson"))
        json_s, lines_s = _scan(files)
        rate = _per_patient(export)
        summary = json.loads((out / "summary.json").read_text())
        print(
            f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, "
            f"DuckDB {duckdb.__version__}"
        )
        print(
            f"export: {args.patients:,} patients, {summary['resources']:,} resources, "
            f"{len(files)} files, {size:.2f} GB"
        )
        print(f"nkr synth: {synth_s:.1f} s, peak memory (PSS) {synth_gb:.2f} GB")
        print(
            f"nkr audit: {audit_s:.1f} s, {CPU[-1]:.1f} CPU-s, peak memory (PSS) {audit_gb:.2f} GB "
            f"(target < 60 s, < 4 GB); {summary['episodes']:,} episodes"
        )
        print(f"load average (1, 5, 15 min) at the end: {os.getloadavg()}")
        print(f"DuckDB scan: read_json count(*) {json_s:.1f} s, raw lines count(*) {lines_s:.1f} s")
        print(f"ratio audit / read_json scan: {audit_s / json_s:.2f} (target <= 3)")
        print(f"per-patient step (decode + judge): {rate:,.0f} patients/s per core (CPU time)")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"kept: {root}")


if __name__ == "__main__":
    main()
