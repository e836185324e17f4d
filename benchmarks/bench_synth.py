"""``nkr synth``: time and peak memory of a synthetic export of N patients, end to end (the
command line under GNU ``/usr/bin/time -v``), with the summed memory of its processes (the
command and its worker processes, sampled every 50 ms from /proc).

Run: .venv/bin/python benchmarks/bench_synth.py [--patients 10000 100000] [--gzip]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def _rss_kb(pid: int) -> int:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    m = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(m[1]) if m else 0


def _tree(pid: int) -> list[int]:
    found = [pid]
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in children:
            found.extend(_tree(int(child)))
    return found


def run(patients: int, compress: bool, folder: Path) -> dict[str, float]:
    out = folder / f"export-{patients}"
    command = [
        "/usr/bin/time",
        "-v",
        sys.executable,
        "-m",
        "nkr",
        "synth",
        "--patients",
        str(patients),
        "--out",
        str(out),
        *(["--gzip"] if compress else []),
    ]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    peak_sum = 0
    while process.poll() is None:
        peak_sum = max(peak_sum, sum(_rss_kb(p) for p in _tree(process.pid)))
        time.sleep(0.05)
    wall = time.perf_counter() - start
    _, err = process.communicate()
    if process.returncode != 0:
        raise SystemExit(err)
    largest = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", err)[1])  # type: ignore[index]
    cpu = re.search(r"Percent of CPU this job got: (\d+)%", err)[1]  # type: ignore[index]
    user = float(re.search(r"User time \(seconds\): ([\d.]+)", err)[1])  # type: ignore[index]
    system = float(re.search(r"System time \(seconds\): ([\d.]+)", err)[1])  # type: ignore[index]
    size = sum(p.stat().st_size for p in out.iterdir())
    shutil.rmtree(out)
    return {
        "patients": patients,
        "seconds": wall,
        "cpu_percent": int(cpu),
        "cpu_seconds": user + system,
        "largest_process_mb": largest / 1024,
        "all_processes_mb": peak_sum / 1024,
        "written_mb": size / 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--gzip", action="store_true")
    parser.add_argument("--dir", type=Path, default=None, help="Where to write (default: /tmp).")
    args = parser.parse_args()
    # The load of the machine (other processes) shows in the seconds, less in the CPU seconds.
    print(f"cores: {len(os.sched_getaffinity(0))}, load: {os.getloadavg()[0]:.1f}")
    print(
        "patients | seconds | patients/s | CPU | CPU seconds | largest process | all processes"
        " | written"
    )
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        for n in args.patients:
            r = run(n, args.gzip, Path(tmp))
            print(
                f"{n:,} | {r['seconds']:.1f} | {n / r['seconds']:,.0f} | {r['cpu_percent']}% | "
                f"{r['cpu_seconds']:.1f} | "
                f"{r['largest_process_mb']:.0f} MB | {r['all_processes_mb']:.0f} MB | "
                f"{r['written_mb']:,.0f} MB"
            )


if __name__ == "__main__":
    main()
