"""``PlanDefinition/$apply`` per patient, one client: p50 and p99 of a call.

Patients: the lumbar guideline's table of cases that FHIR can say (tests/cases/lumbar.toml,
translated as the tests translate them), moved to today, so that their weeks since onset
stay as the table has them. Each call applies the pathway PlanDefinition (all ten
recommendations) to one patient's Parameters (subject + data Bundle with its record and
planned interventions as draft requests).

Two ways, each a single client sending one request after another:

- ``real``: ``nkr serve`` (uvicorn, one worker) on loopback, an httpx keep-alive client;
- ``in-process``: the same app called through httpx's ASGI transport (no sockets).

The anchor is cqf-ruler, whose issues report 1.7 to 13 s per patient for ``$apply``.

Run: .venv/bin/python benchmarks/bench_apply.py [--calls 2000] [--mode real|in-process|both]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx

# The patients come from the table of cases in the repository's tests.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.cases.fhir import apply_parameters
from tests.cases.table import CASES, TableCase

from nkr._devserver import start_server, stop_server

PATH = "/fhir/PlanDefinition/nkr-lumbal-radikulopati/$apply"
HEADERS = {"content-type": "application/fhir+json"}


def _moved(case: TableCase, today: dt.date) -> TableCase:
    shift = today - case.date
    fields = dict(case.case)
    for key in ("symptom_onset", "birth_date"):
        if key in fields:
            fields[key] = (dt.date.fromisoformat(str(fields[key])) + shift).isoformat()
    return replace(case, date=today, case=fields)


def bodies() -> list[bytes]:
    today = dt.datetime.now(ZoneInfo("Europe/Copenhagen")).date()
    lumbar = [c for c in CASES if c.guideline == "nkr-lumbal-radikulopati" and c.cards]
    return [json.dumps(apply_parameters(_moved(c, today))).encode() for c in lumbar]


def _stats(times: list[float]) -> str:
    times = sorted(times)
    p50 = statistics.median(times) * 1000
    p99 = times[int(len(times) * 0.99) - 1] * 1000
    return f"p50 {p50:.2f} ms, p99 {p99:.2f} ms, mean {statistics.fmean(times) * 1000:.2f} ms"


def run_real(payloads: list[bytes], calls: int) -> list[float]:
    with tempfile.TemporaryDirectory() as data_dir:
        proc, base = start_server({}, Path(data_dir))
        try:
            with httpx.Client(base_url=base, timeout=30) as client:
                for body in payloads * 5:  # warm up
                    assert client.post(PATH, content=body, headers=HEADERS).status_code == 200
                times = []
                for i in range(calls):
                    body = payloads[i % len(payloads)]
                    start = time.perf_counter()
                    response = client.post(PATH, content=body, headers=HEADERS)
                    times.append(time.perf_counter() - start)
                    assert response.status_code == 200, response.text[:300]
                return times
        finally:
            stop_server(proc)


def run_in_process(payloads: list[bytes], calls: int) -> list[float]:
    from nkr._app import create_app
    from nkr._package import registry
    from nkr._settings import Settings

    async def go() -> list[float]:
        with tempfile.TemporaryDirectory() as data_dir:
            settings = Settings.from_env({"NKR_DATA_DIR": data_dir})
            app = create_app(settings, registry())
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
                for body in payloads * 5:
                    assert (await c.post(PATH, content=body, headers=HEADERS)).status_code == 200
                times = []
                for i in range(calls):
                    body = payloads[i % len(payloads)]
                    start = time.perf_counter()
                    response = await c.post(PATH, content=body, headers=HEADERS)
                    times.append(time.perf_counter() - start)
                    assert response.status_code == 200
                return times

    return asyncio.run(go())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--mode", choices=("real", "in-process", "both"), default="both")
    args = parser.parse_args()
    payloads = bodies()
    sizes = [len(b) for b in payloads]
    print(
        f"{platform.python_implementation()} {platform.python_version()} on "
        f"{platform.machine()}, {os.cpu_count()} CPUs; {len(payloads)} patients, "
        f"bodies {min(sizes)}-{max(sizes)} bytes; {args.calls} calls per mode, one client"
    )
    if args.mode in ("real", "both"):
        print(f"real server (nkr serve, loopback): {_stats(run_real(payloads, args.calls))}")
    if args.mode in ("in-process", "both"):
        print(f"in-process (ASGI transport):       {_stats(run_in_process(payloads, args.calls))}")
    print("anchor: cqf-ruler $apply, 1.7-13 s per patient (its issues)")


if __name__ == "__main__":
    main()
