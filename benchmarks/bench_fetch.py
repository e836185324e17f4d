"""Fetching missing prefetch under load: the real server (uvicorn, one worker) and a FHIR server
on loopback.

The FHIR server is a minimal asyncio HTTP/1.1 keep-alive server in a process of its own (so
that its cost is not the load generator's, nor nkr's): ``fast`` answers every GET at once with
the patient's pain-score Bundle; ``hang`` accepts connections and never answers. The calls are
those of ``bench_cdshooks.py`` (a patient with 32 resources), whose load generator is reused.

Two measurements:

- throughput: patient-view calls with full prefetch against the same calls lacking
  ``observations``, which nkr fetches from the fast server: closed loop, ``--connections``
  connections, ``--seconds`` per measurement, in ``--rounds`` rounds of both in turn; requests
  per second, p50 and p99, and the ratio of the two within each round (target: at least 1/3);
- stall: ``--hanging`` calls that need a fetch from the hanging server sent at once while
  full-prefetch calls arrive at ``--rate`` (open loop: latency counts from when each was due),
  against the same open loop alone; p50, p99 and max of the ordinary calls (target: no stall
  beyond the fetch calls themselves), and what the hanging calls got. Run once with the
  default bound on fetches in flight (``NKR_FHIR_MAX_CONCURRENT_FETCHES``, most of them get
  503 at once) and once with a bound of ``--hanging`` (every one of them waits on the server
  until ``NKR_FHIR_TIMEOUT_SECONDS``).

Run: .venv/bin/python benchmarks/bench_fetch.py [--seconds 3] [--rounds 3] [--connections 8]
     [--hanging 200] [--rate 200] [--strict]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import orjson

from bench_cdshooks import (
    PATIENT_VIEW,
    Connection,
    Result,
    closed_loop,
    hook_body,
    open_loop,
    patient_resources,
    request_bytes,
)
from nkr._devserver import free_port, start_server, stop_server

FETCHED_KEY = "observations"
TIMEOUT_SECONDS = 3.0  # NKR_FHIR_TIMEOUT_SECONDS, the default

# -- the FHIR server (its own process) ---------------------------------------------------------


def fhir_server_main(port: int, mode: str) -> None:
    """Serve ``mode`` (fast or hang) on 127.0.0.1:``port`` until killed."""
    body = orjson.dumps(patient_resources()[FETCHED_KEY])
    answer = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/fhir+json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                if mode == "hang":
                    await reader.read()  # until the client hangs up
                    return
                writer.write(answer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    async def main() -> None:
        server = await asyncio.start_server(serve, "127.0.0.1", port, backlog=1024)
        async with server:
            await server.serve_forever()

    try:
        import uvloop

        uvloop.run(main())
    except ImportError:
        asyncio.run(main())


def start_fhir_server(mode: str) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, __file__, "--fhir-server", str(port), mode])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with httpx.Client(timeout=0.2) as client:
                client.get(f"http://127.0.0.1:{port}/fhir/metadata")
            break
        except httpx.TimeoutException:
            break  # the hanging server: it accepted the connection
        except httpx.TransportError:
            time.sleep(0.05)
    return proc, f"http://127.0.0.1:{port}/fhir"


# -- the calls ----------------------------------------------------------------------------------


def needing_fetch(fhir_server: str) -> bytes:
    """The patient-view call without its pain scores, which nkr must fetch."""
    body = orjson.loads(hook_body("patient-view"))
    del body["prefetch"][FETCHED_KEY]
    body["fhirServer"] = fhir_server
    body["fhirAuthorization"] = {"access_token": "bench-token", "token_type": "Bearer"}
    return orjson.dumps(body)


def check_answers(base: str, full: bytes, fetch: bytes) -> None:
    """Both kinds of call give the same cards (so the fetch really happened)."""
    topics = []
    for body in (full, fetch):
        response = httpx.post(
            base + PATIENT_VIEW,
            content=body,
            headers={"Content-Type": "application/json"},
            timeout=10,
        )
        if response.status_code != 200:
            raise SystemExit(f"unexpected answer {response.status_code}: {response.text[:300]}")
        topics.append([c["source"]["topic"]["code"] for c in response.json()["cards"]])
    if topics[0] != topics[1] or len(topics[0]) != 2:
        raise SystemExit(f"the fetched call's cards differ: {topics}")


def merged(results: list[Result]) -> Result:
    return Result([x for r in results for x in r.latencies], 1.0, sum(r.errors for r in results))


# -- the stall ------------------------------------------------------------------------------------


async def stall(
    port: int, hanging: bytes, ordinary: bytes, count: int, rate: float, seconds: float
) -> tuple[Result, collections.Counter[int], float]:
    """``count`` calls that hang on the FHIR server, sent at once, while ordinary calls arrive
    at ``rate`` for ``seconds``: the ordinary calls' result, the hanging calls' statuses and
    the slowest of them (s)."""
    connections = [await Connection.open(port) for _ in range(count)]
    statuses: collections.Counter[int] = collections.Counter()
    slowest = 0.0

    async def one(conn: Connection) -> None:
        nonlocal slowest
        start = time.perf_counter()
        statuses[await conn.exchange(hanging)] += 1
        slowest = max(slowest, time.perf_counter() - start)
        conn.close()

    async def burst() -> None:
        await asyncio.sleep(0.3)  # once the open loop runs (its warm-up is over)
        await asyncio.gather(*(one(c) for c in connections))

    result, _ = await asyncio.gather(open_loop(port, ordinary, rate, seconds), burst())
    return result, statuses, slowest


def line(name: str, result: Result) -> str:
    worst = max(result.latencies, default=float("nan")) * 1000
    return (
        f"  {name:40}: p50 {result.percentile(50):7.2f} ms  p99 {result.percentile(99):7.2f} ms"
        f"  max {worst:7.2f} ms  errors {result.errors}"
    )


# -- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="per measurement")
    parser.add_argument("--rounds", type=int, default=3, help="throughput rounds")
    parser.add_argument("--connections", type=int, default=8, help="throughput concurrency")
    parser.add_argument("--hanging", type=int, default=200, help="calls hanging on a fetch")
    parser.add_argument("--rate", type=float, default=200.0, help="ordinary calls/s in the stall")
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when a target is missed"
    )
    parser.add_argument("--fhir-server", nargs=2, metavar=("PORT", "MODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.fhir_server:
        fhir_server_main(int(args.fhir_server[0]), args.fhir_server[1])
        return
    print(
        f"nkr prefetch-fetch benchmark: Python {platform.python_version()}, {os.cpu_count()} "
        f"CPUs, uvicorn 1 worker; patient-view with 32 prefetch resources, the fetching call "
        f"lacking '{FETCHED_KEY}' (22 Observations); {args.seconds:g} s per measurement"
    )
    fast, fast_url = start_fhir_server("fast")
    hang, hang_url = start_fhir_server("hang")
    full = hook_body("patient-view")
    fetch = needing_fetch(fast_url)
    hanging = needing_fetch(hang_url)
    servers = {"NKR_FHIR_SERVERS": f"{fast_url},{hang_url}"}
    ratios: list[float] = []
    stalls: dict[str, tuple[Result, Result, collections.Counter[int], float]] = {}
    try:
        with tempfile.TemporaryDirectory() as data_dir:
            proc, base = start_server(servers, Path(data_dir))
            port = int(base.rsplit(":", 1)[1])
            try:
                check_answers(base, full, fetch)
                by_kind: dict[str, list[Result]] = {"full prefetch": [], "one key fetched": []}
                for _ in range(args.rounds):
                    for name, body in (("full prefetch", full), ("one key fetched", fetch)):
                        request = request_bytes(port, PATIENT_VIEW, body)
                        by_kind[name].append(
                            asyncio.run(closed_loop(port, request, args.connections, args.seconds))
                        )
                    ratios.append(
                        by_kind["one key fetched"][-1].rate / by_kind["full prefetch"][-1].rate
                    )
                print(
                    f"\nthroughput ({args.connections} connections, closed loop; median of "
                    f"{args.rounds} rounds)"
                )
                for name, rounds in by_kind.items():
                    m = merged(rounds)
                    rates = ", ".join(f"{r.rate:,.0f}" for r in rounds)
                    print(
                        f"  {name:16}: {statistics.median(r.rate for r in rounds):7,.0f} req/s"
                        f"  p50 {m.percentile(50):6.2f} ms  p99 {m.percentile(99):6.2f} ms"
                        f"  errors {m.errors}  (rounds: {rates})"
                    )
            finally:
                stop_server(proc)
        bounds = {
            "default bound": {},
            f"bound {args.hanging}": {"NKR_FHIR_MAX_CONCURRENT_FETCHES": str(args.hanging)},
        }
        seconds = TIMEOUT_SECONDS + 1.5
        for label, env in bounds.items():
            with tempfile.TemporaryDirectory() as data_dir:
                proc, base = start_server(servers | env, Path(data_dir))
                port = int(base.rsplit(":", 1)[1])
                try:
                    ordinary = request_bytes(port, PATIENT_VIEW, full)
                    alone = asyncio.run(open_loop(port, ordinary, args.rate, seconds))
                    during, statuses, slowest = asyncio.run(
                        stall(
                            port,
                            request_bytes(port, PATIENT_VIEW, hanging),
                            ordinary,
                            args.hanging,
                            args.rate,
                            seconds,
                        )
                    )
                    stalls[label] = (alone, during, statuses, slowest)
                finally:
                    stop_server(proc)
    finally:
        for p in (fast, hang):
            p.kill()
            p.wait()
    print(
        f"\nstall ({args.hanging} calls needing a fetch from a FHIR server that never answers, "
        f"sent at once; ordinary full-prefetch calls at {args.rate:g}/s, open loop, "
        f"{seconds:g} s)"
    )
    for label, (alone, during, statuses, slowest) in stalls.items():
        got = ", ".join(f"{n} × {status}" for status, n in sorted(statuses.items()))
        print(line(f"{label}: ordinary calls alone", alone))
        print(line(f"{label}: ordinary calls during", during))
        print(f"  {label}: the hanging calls got {got}; the slowest answered in {slowest:.2f} s")
    ratio = statistics.median(ratios)
    worst = max(max(during.latencies) for _, during, _, _ in stalls.values()) * 1000
    throughput_met = ratio >= 1 / 3
    stall_met = worst < 100
    print("\ntargets")
    print(
        f"  fetching calls' throughput {ratio:.0%} of full prefetch, median of the rounds "
        f"({', '.join(f'{r:.0%}' for r in ratios)}) (target >= 33%): "
        f"{'met' if throughput_met else 'MISSED'}"
    )
    print(
        f"  ordinary calls during the stall: max {worst:.1f} ms (target: no stall, < 100 ms): "
        f"{'met' if stall_met else 'MISSED'}"
    )
    sys.exit(1 if args.strict and not (throughput_met and stall_met) else 0)


if __name__ == "__main__":
    main()
