"""The CDS Hooks service under load: the real server (uvicorn, one worker) on loopback.

Drives a patient-view and an order-sign request for a patient with about 30 FHIR resources,
and the same bodies against a bare endpoint on the same server that only parses the body
(``NKR_BENCH_ENDPOINT=1``, off by default). Pure Python: the load generator is a minimal
HTTP/1.1 keep-alive client on asyncio, in this process; the server runs in its own process.

Two measurements per endpoint:

- saturation: ``--connections`` connections, each sending its next request as soon as the
  last answer arrives (closed loop): requests per second, p50 and p99 latency; in
  ``--rounds`` rounds of every endpoint in turn, the share of the bare endpoint's throughput
  taken within each round and its median reported;
- moderate load: a fixed arrival rate (``--rate``, open loop: latency counts from the time a
  request was due, so a slow server cannot hide queueing): p50 and p99 latency, per round, and
  their medians over the rounds.

Run: .venv/bin/python benchmarks/bench_cdshooks.py [--seconds 5] [--rounds 3] [--connections 8]
     [--rate 500] [--strict]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import orjson

from nkr._devserver import start_server, stop_server

Resource = dict[str, Any]
PATIENT_VIEW = "/cds-services/nkr-lumbal-radikulopati-patient-view"
ORDER_SIGN = "/cds-services/nkr-lumbal-radikulopati-order-sign"
BARE = "/_bench/parse"

# -- the request bodies: one realistic patient ------------------------------------------------


def _day(days_ago: int) -> str:
    today = dt.datetime.now(ZoneInfo("Europe/Copenhagen")).date()
    return (today - dt.timedelta(days=days_ago)).isoformat()


def _coded(system: str, code: str) -> dict[str, Any]:
    return {"coding": [{"system": system, "code": code}]}


def _condition(cid: str, system: str, code: str, onset: int, status: str = "active") -> Resource:
    return {
        "resourceType": "Condition",
        "id": cid,
        "clinicalStatus": _coded(
            "http://terminology.hl7.org/CodeSystem/condition-clinical", status
        ),
        "verificationStatus": _coded(
            "http://terminology.hl7.org/CodeSystem/condition-ver-status", "confirmed"
        ),
        "code": _coded(system, code),
        "subject": {"reference": "Patient/bench"},
        "onsetDateTime": _day(onset),
        "recordedDate": _day(onset),
    }


def _observation(oid: str, code: str, value: float, days: int) -> Resource:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "category": [
            _coded("http://terminology.hl7.org/CodeSystem/observation-category", "vital-signs")
        ],
        "code": _coded("http://loinc.org", code),
        "subject": {"reference": "Patient/bench"},
        "effectiveDateTime": _day(days) + "T09:30:00+01:00",
        "valueQuantity": {"value": value, "unit": "1", "system": "http://unitsofmeasure.org"},
    }


def _order(resource_type: str, rid: str, system: str, code: str, status: str) -> Resource:
    order: Resource = {
        "resourceType": resource_type,
        "id": rid,
        "status": status,
        "code": _coded(system, code),
        "subject": {"reference": "Patient/bench"},
    }
    if resource_type == "ServiceRequest":
        order["intent"] = "order"
    else:
        order["performedDateTime"] = _day(10)
    return order


def _bundle(resources: list[Resource]) -> Resource:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [
            {"fullUrl": f"https://ehr.example/fhir/{r['resourceType']}/{r['id']}", "resource": r}
            for r in resources
        ],
    }


def patient_resources() -> dict[str, Any]:
    """The prefetch of a patient with 33 resources: in week 5, severe pain despite supervised
    exercise (so the spine-surgeon card is due), four conditions, 22 observations."""
    icd10, snomed, sks = (
        "http://hl7.org/fhir/sid/icd-10",
        "http://snomed.info/sct",
        "urn:oid:1.2.208.176.2.4",
    )
    conditions = [
        _condition("c1", icd10, "M54.1", 30),
        _condition("c2", icd10, "I10", 2000),
        _condition("c3", icd10, "E11.9", 1500),
        _condition("c4", icd10, "J45.9", 3000, status="inactive"),
    ]
    observations = [_observation(f"pain{i}", "72514-3", 9 - i % 3, 1 + 2 * i) for i in range(6)]
    observations += [_observation(f"bp{i}", "8480-6", 120 + i, 3 * i) for i in range(8)]
    observations += [_observation(f"wt{i}", "29463-7", 82.5 - i / 10, 5 * i) for i in range(8)]
    procedures = [
        _order("Procedure", "pr1", snomed, "229065009", "completed"),
        _order("Procedure", "pr2", snomed, "229065009", "completed"),
        _order("Procedure", "pr3", sks, "BLNG1", "completed"),
    ]
    service_requests = [
        _order("ServiceRequest", "sr1", snomed, "229065009", "completed"),
        _order("ServiceRequest", "sr2", sks, "BLNG1", "active"),
    ]
    return {
        "patient": {
            "resourceType": "Patient",
            "id": "bench",
            "gender": "female",
            "birthDate": "1975-04-12",
            "name": [{"family": "Testesen", "given": ["Bente"]}],
        },
        "conditions": _bundle(conditions),
        "observations": _bundle(observations),
        "procedures": _bundle(procedures),
        "serviceRequests": _bundle(service_requests),
    }


def hook_body(hook: str) -> bytes:
    context: dict[str, Any] = {"userId": "Practitioner/gp-1", "patientId": "bench"}
    if hook == "order-sign":
        drafts = [
            _order("ServiceRequest", "d1", "http://snomed.info/sct", "41333006", "draft"),
            _order("ServiceRequest", "d2", "http://snomed.info/sct", "229065009", "draft"),
        ]
        context["draftOrders"] = {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": d} for d in drafts],
        }
    body = {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": patient_resources(),
    }
    return orjson.dumps(body)


# -- the server -------------------------------------------------------------------------------


def start(data_dir: str, source: Path | None = None) -> tuple[subprocess.Popen[bytes], int]:
    """The real server with the bare endpoint switched on; its process and port. ``source``:
    another checkout's ``src`` folder to run instead of this one (a baseline, side by side)."""
    env = {"NKR_BENCH_ENDPOINT": "1"}
    if source is not None:
        env["PYTHONPATH"] = str(source)
    proc, base = start_server(env, Path(data_dir))
    return proc, int(base.rsplit(":", 1)[1])


# -- the load generator -------------------------------------------------------------------------


@dataclass
class Result:
    latencies: list[float]
    seconds: float
    errors: int

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.seconds

    def percentile(self, p: float) -> float:
        if not self.latencies:
            return float("nan")
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000


def request_bytes(port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    @classmethod
    async def open(cls, port: int) -> Connection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return cls(reader, writer)

    async def exchange(self, request: bytes) -> int:
        """Send one request and read the whole answer; returns the HTTP status."""
        self.writer.write(request)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        length = 0
        for line in head.split(b"\r\n"):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        await self.reader.readexactly(length)
        return status

    def close(self) -> None:
        self.writer.close()


async def closed_loop(port: int, request: bytes, connections: int, seconds: float) -> Result:
    conns = [await Connection.open(port) for _ in range(connections)]
    latencies: list[float] = []
    errors = 0
    warm_until = time.perf_counter() + min(1.0, seconds / 4)
    end = warm_until + seconds

    async def worker(conn: Connection) -> None:
        nonlocal errors
        while True:
            start = time.perf_counter()
            if start >= end:
                return
            status = await conn.exchange(request)
            if start >= warm_until:
                latencies.append(time.perf_counter() - start)
                errors += status != 200

    await asyncio.gather(*(worker(c) for c in conns))
    for conn in conns:
        conn.close()
    return Result(latencies, seconds, errors)


async def open_loop(port: int, request: bytes, rate: float, seconds: float) -> Result:
    """Requests due at a fixed rate; latency counts from when each was due."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(32):
        pool.put_nowait(await Connection.open(port))
    latencies: list[float] = []
    errors = 0
    loop = asyncio.get_running_loop()
    total = int(rate * seconds)
    warmup = int(rate * min(1.0, seconds / 4))
    start = time.perf_counter() + 0.05

    async def one(due: float, measured: bool) -> None:
        nonlocal errors
        conn = await pool.get()
        status = await conn.exchange(request)
        pool.put_nowait(conn)
        if measured:
            latencies.append(time.perf_counter() - due)
            errors += status != 200

    tasks: list[asyncio.Task[None]] = []
    for i in range(warmup + total):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(loop.create_task(one(due, i >= warmup)))
    await asyncio.gather(*tasks)
    while not pool.empty():
        pool.get_nowait().close()
    return Result(latencies, seconds, errors)


# -- main ---------------------------------------------------------------------------------------


# The service answers JSON declared as such only (415 otherwise).
JSON = {"Content-Type": "application/json"}


def check_answers(port: int, bodies: dict[str, bytes]) -> None:
    base = f"http://127.0.0.1:{port}"
    for path, expected in ((PATIENT_VIEW, 2), (ORDER_SIGN, 1)):
        response = httpx.post(base + path, content=bodies[path], headers=JSON, timeout=10)
        cards = response.json().get("cards", [])
        if response.status_code != 200 or len(cards) != expected:
            raise SystemExit(f"{path}: unexpected answer {response.status_code}: {response.text}")
    if httpx.post(base + BARE, content=bodies[PATIENT_VIEW]).status_code != 200:
        raise SystemExit("the bare endpoint is not on; is NKR_BENCH_ENDPOINT honoured?")


def in_rounds(
    rounds: int,
    ports: dict[str, int],
    runs: list[tuple[str, str, bytes]],
    measure: Callable[[int, bytes], Coroutine[Any, Any, Result]],
) -> dict[str, dict[str, list[Result]]]:
    """Each run on each server measured ``rounds`` times, every run of every server in turn
    within a round: the load on a shared machine drifts over a benchmark, and a share taken
    within one round (service and bare, this tree and the baseline, a few seconds apart) is
    steadier than one taken across the whole benchmark."""
    results: dict[str, dict[str, list[Result]]] = {
        server: {name: [] for name, _, _ in runs} for server in ports
    }
    for _ in range(rounds):
        for server, port in ports.items():
            for name, path, body in runs:
                results[server][name].append(
                    asyncio.run(measure(port, request_bytes(port, path, body)))
                )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=5.0, help="per measurement")
    parser.add_argument("--connections", type=int, default=8, help="saturation concurrency")
    parser.add_argument(
        "--rounds", type=int, default=3, help="saturation rounds (each endpoint once a round)"
    )
    parser.add_argument("--rate", type=float, default=500.0, help="moderate load, requests/s")
    parser.add_argument(
        "--strict", action="store_true", help="exit with status 1 when a target is missed"
    )
    parser.add_argument(
        "--baseline",
        type=Path,
        help="another checkout's src folder (e.g. the previous main's), measured side by side",
    )
    args = parser.parse_args()
    bodies = {PATIENT_VIEW: hook_body("patient-view"), ORDER_SIGN: hook_body("order-sign")}
    resources = sum(
        len(v["entry"]) if v.get("resourceType") == "Bundle" else 1
        for v in orjson.loads(bodies[PATIENT_VIEW])["prefetch"].values()
    )
    print(
        f"nkr CDS Hooks benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"uvicorn 1 worker (httptools, uvloop); {resources} prefetch resources, bodies "
        f"{len(bodies[PATIENT_VIEW]):,} / {len(bodies[ORDER_SIGN]):,} bytes; "
        f"{args.seconds:g} s per measurement"
    )
    sources: dict[str, Path | None] = {"this tree": None}
    if args.baseline is not None:
        sources["baseline"] = args.baseline.resolve()
    runs = [
        ("patient-view", PATIENT_VIEW, bodies[PATIENT_VIEW]),
        ("bare parse (patient-view body)", BARE, bodies[PATIENT_VIEW]),
        ("order-sign", ORDER_SIGN, bodies[ORDER_SIGN]),
        ("bare parse (order-sign body)", BARE, bodies[ORDER_SIGN]),
    ]
    with tempfile.TemporaryDirectory() as data_dir:
        procs: list[subprocess.Popen[bytes]] = []
        ports: dict[str, int] = {}
        try:
            for server, source in sources.items():
                folder = Path(data_dir) / server.replace(" ", "-")
                folder.mkdir()
                proc, ports[server] = start(str(folder), source)
                procs.append(proc)
                check_answers(ports[server], bodies)
            saturated_all = in_rounds(
                args.rounds,
                ports,
                runs,
                lambda port, request: closed_loop(port, request, args.connections, args.seconds),
            )
            moderate_all = in_rounds(
                args.rounds,
                ports,
                runs,
                lambda port, request: open_loop(port, request, args.rate, args.seconds),
            )
        finally:
            for proc in procs:
                stop_server(proc)
    for server in ports:
        saturated, moderate = saturated_all[server], moderate_all[server]
        print(
            f"\n[{server}{'' if sources[server] is None else f': {sources[server]}'}] "
            f"saturation ({args.connections} connections, closed loop; median of "
            f"{args.rounds} rounds)"
        )
        for name, _, _ in runs:
            rounds = saturated[name]
            merged = Result([x for r in rounds for x in r.latencies], 1.0, 0)
            rates = ", ".join(f"{r.rate:,.0f}" for r in rounds)
            print(
                f"  {name:32}: {statistics.median(r.rate for r in rounds):8,.0f} req/s"
                f"  p50 {merged.percentile(50):6.2f} ms  p99 {merged.percentile(99):6.2f} ms"
                f"  errors {sum(r.errors for r in rounds)}  (rounds: {rates})"
            )
        print(
            f"[{server}] moderate load ({args.rate:g} requests/s, open loop; median of "
            f"{args.rounds} rounds)"
        )
        for name, _, _ in runs:
            rounds = moderate[name]
            p99s = ", ".join(f"{r.percentile(99):.2f}" for r in rounds)
            p50 = statistics.median(r.percentile(50) for r in rounds)
            p99 = statistics.median(r.percentile(99) for r in rounds)
            print(
                f"  {name:32}: p50 {p50:6.2f} ms  p99 {p99:6.2f} ms"
                f"  errors {sum(r.errors for r in rounds)}  (p99 of the rounds: {p99s})"
            )
    if "baseline" in ports:
        print("\nthis tree against the baseline (share of bare parse, each server's own)")
        for hook in ("patient-view", "order-sign"):
            by_server: dict[str, float] = {}
            for server in ports:
                bare = saturated_all[server][f"bare parse ({hook} body)"]
                svc = saturated_all[server][hook]
                by_server[server] = statistics.median(
                    s.rate / b.rate for s, b in zip(svc, bare, strict=True)
                )
            p99s_by = {
                server: statistics.median(r.percentile(99) for r in moderate_all[server][hook])
                for server in ports
            }
            print(
                f"  {hook:12}: throughput {by_server['this tree']:.0%} of bare vs "
                f"{by_server['baseline']:.0%} "
                f"(ratio {by_server['this tree'] / by_server['baseline']:.2f}); p99 at moderate "
                f"load {p99s_by['this tree']:.2f} ms vs {p99s_by['baseline']:.2f} ms"
            )
    saturated, moderate = saturated_all["this tree"], moderate_all["this tree"]
    print("\ntargets")
    ok = True
    for hook in ("patient-view", "order-sign"):
        bare = saturated[f"bare parse ({hook} body)"]
        shares = [svc.rate / base.rate for svc, base in zip(saturated[hook], bare, strict=True)]
        share = statistics.median(shares)
        p99 = statistics.median(r.percentile(99) for r in moderate[hook])
        ok &= share >= 0.5 and p99 < 10
        print(
            f"  {hook:12}: p99 at moderate load {p99:.2f} ms, median of the rounds "
            f"(target < 10 ms): "
            f"{'met' if p99 < 10 else 'MISSED'}; throughput {share:.0%} of bare, median of "
            f"the rounds ({', '.join(f'{x:.0%}' for x in shares)}) "
            f"(target >= 50%): {'met' if share >= 0.5 else 'MISSED'}"
        )
    sys.exit(1 if args.strict and not ok else 0)


if __name__ == "__main__":
    main()
