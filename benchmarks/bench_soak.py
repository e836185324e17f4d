"""A soak of the CDS Hooks service: the real server (uvicorn, one worker) under 64 keep-alive
connections for 60 s, with its resident memory (RSS) sampled from start to end.

Half the connections send the patient-view call of ``bench_cdshooks.py`` (32 resources), half
its order-sign call; every answer must be 200. Printed: RSS before any load, after the first
few seconds (warm), every ``--every`` seconds and at the end; requests, errors, p50/p99; and
the growth from warm to end (target: memory does not grow with the number of calls).

Run: .venv/bin/python benchmarks/bench_soak.py [--seconds 60] [--connections 64]
"""

from __future__ import annotations

import argparse
import asyncio
import platform
import tempfile
import time
from pathlib import Path

from bench_cdshooks import Result, closed_loop, hook_body, request_bytes, start
from nkr._devserver import stop_server


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


async def soak(port: int, pid: int, seconds: float, connections: int, every: float) -> None:
    bodies = [
        request_bytes(
            port, "/cds-services/nkr-lumbal-radikulopati-patient-view", hook_body("patient-view")
        ),
        request_bytes(
            port, "/cds-services/nkr-lumbal-radikulopati-order-sign", hook_body("order-sign")
        ),
    ]
    samples: list[tuple[float, float]] = [(0.0, rss_mib(pid))]
    began = time.perf_counter()

    async def sample() -> None:
        while True:
            await asyncio.sleep(every)
            samples.append((time.perf_counter() - began, rss_mib(pid)))

    sampler = asyncio.create_task(sample())
    results: list[Result] = await asyncio.gather(
        *(closed_loop(port, body, connections // 2, seconds) for body in bodies)
    )
    sampler.cancel()
    samples.append((time.perf_counter() - began, rss_mib(pid)))
    latencies = sorted(x for r in results for x in r.latencies)
    merged = Result(latencies, seconds, sum(r.errors for r in results))
    print(
        f"python {platform.python_version()}, uvicorn 1 worker, {connections} connections, "
        f"{seconds:.0f} s (patient-view and order-sign, half each)"
    )
    print(
        f"requests {len(latencies):,} ({merged.rate:,.0f}/s)  errors {merged.errors}  "
        f"p50 {merged.percentile(50):.1f} ms  p99 {merged.percentile(99):.1f} ms"
    )
    print("RSS (MiB) at " + ", ".join(f"{t:.0f} s: {m:.1f}" for t, m in samples))
    warm = next((m for t, m in samples if t >= min(10.0, seconds / 3)), samples[1][1])
    print(
        f"RSS start {samples[0][1]:.1f} MiB, warm {warm:.1f} MiB, end {samples[-1][1]:.1f} MiB, "
        f"max {max(m for _, m in samples):.1f} MiB; growth warm to end "
        f"{samples[-1][1] - warm:+.1f} MiB"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--every", type=float, default=10.0, help="RSS sampling interval (s)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        proc, port = start(data_dir)
        try:
            asyncio.run(soak(port, proc.pid, args.seconds, args.connections, args.every))
        finally:
            stop_server(proc)


if __name__ == "__main__":
    main()
