"""Attacks on prefetch fetching, over real HTTP against the real server (issue 9, findings 1-3).

A caller names ``fhirServer``; nkr must not become its way into the hospital network (SSRF),
nor hand it the EHR's bearer token, nor tell it what answered on which port, nor let a slow,
hanging or enormous FHIR server stall the service or exhaust its memory.

The FHIR server here is a few raw sockets on 127.0.0.1 (not an ASGI app): the test must know
exactly how many bytes it handed to nkr before nkr hung up, and must be able to hang, trickle
and drop connections the way broken servers do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from nkr._devserver import free_port
from tests._async import run_async

from ..conftest import in_process
from .conftest import Cds, ServerFactory, ServerProcess
from .fhir_data import SERVICE_IDS, bundle, hook_request, pain, procedure, radiculopathy

TOKEN = "ehr-bearer-token-0815"
BIG = 55_000_000  # the size of the Bundle that was read whole before (55 MB)
CAP = 1_000_000  # NKR_FHIR_MAX_RESPONSE_BYTES of the fenced server
PATIENT_VIEW = f"/cds-services/{SERVICE_IDS['patient-view']}"
JSON = {"Content-Type": "application/json"}
# The behaviours of the fake FHIR server, one per base path.
BEHAVIOURS = (
    "fhir",
    "paging",
    "missing",
    "close",
    "hang",
    "notjson",
    "huge",
    "chunked",
    "trickle",
    "slow",
)


class FakeFhir:
    """A FHIR server on 127.0.0.1 whose base path says how it behaves (``/fhir`` answers
    properly; ``/hang``, ``/trickle``, ``/huge``, ... misbehave), recording every request."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []
        self.sent: list[int] = []  # bytes of body handed to the socket, per huge answer
        self.lock = threading.Lock()
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=512)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.closing = False
        threading.Thread(target=self._accept, daemon=True).start()

    def paths(self) -> list[str]:
        with self.lock:
            return [path for path, _ in self.seen]

    def reset(self) -> None:
        with self.lock:
            self.seen.clear()
            self.sent.clear()

    def close(self) -> None:
        self.closing = True
        self.listener.close()

    def _accept(self) -> None:
        while not self.closing:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(30)
            head = b""
            with contextlib.suppress(OSError):
                while b"\r\n\r\n" not in head and len(head) < 65536:
                    data = conn.recv(4096)
                    if not data:
                        return
                    head += data
            lines = head.split(b"\r\n")
            path = lines[0].split(b" ")[1].decode()
            auth = next(
                (
                    line.split(b":", 1)[1].strip().decode()
                    for line in lines[1:]
                    if line.lower().startswith(b"authorization:")
                ),
                None,
            )
            with self.lock:
                self.seen.append((path, auth))
            with contextlib.suppress(OSError):
                self._answer(conn, path)

    def _answer(self, conn: socket.socket, path: str) -> None:
        behaviour = path.split("/")[1]
        if behaviour == "close":
            return  # an open port that speaks no HTTP: it hangs up
        if behaviour == "hang":
            with contextlib.suppress(OSError):
                conn.recv(1)  # until nkr gives up and closes the connection
            return
        if behaviour == "missing":
            self._send(conn, 404, orjson.dumps({"resourceType": "OperationOutcome"}))
        elif behaviour == "notjson":
            self._send(conn, 200, b"<html>login</html>", "text/html")
        elif behaviour == "paging":
            # A next link that climbs out of the base: the token must not follow it.
            nxt = f"{self.url}/paging/../admin/Observation?page=2"
            first = bundle([]) | {"link": [{"relation": "next", "url": nxt}]}
            self._send(conn, 200, orjson.dumps(first))
        elif behaviour in ("huge", "chunked"):
            self._huge(conn, chunked=behaviour == "chunked")
        elif behaviour == "slow":
            time.sleep(0.4)
            number = int(path.rsplit("page=", 1)[1]) if "page=" in path else 1
            nxt = f"{self.url}/slow/Condition?patient=p1&page={number + 1}"
            links = [{"relation": "next", "url": nxt}] if number < 3 else []
            answer = _resources(path.replace("/slow/", "/fhir/"))
            if answer["resourceType"] == "Bundle":
                answer["link"] = links
            self._send(conn, 200, orjson.dumps(answer))
        elif behaviour == "trickle":
            conn.sendall(self._head(200, 100_000))
            for _ in range(400):  # one byte every 50 ms: 20 s in all
                conn.sendall(b" ")
                time.sleep(0.05)
        else:
            self._send(conn, 200, orjson.dumps(_resources(path)))

    @staticmethod
    def _head(status: int, length: int | None, media_type: str = "application/fhir+json") -> bytes:
        size = "Transfer-Encoding: chunked" if length is None else f"Content-Length: {length}"
        return (
            f"HTTP/1.1 {status} X\r\nContent-Type: {media_type}\r\n{size}\r\n"
            "Connection: close\r\n\r\n"
        ).encode()

    def _send(
        self, conn: socket.socket, status: int, body: bytes, media_type: str = "application/json"
    ) -> None:
        conn.sendall(self._head(status, len(body), media_type) + body)

    def _huge(self, conn: socket.socket, *, chunked: bool) -> None:
        # A valid 55 MB Bundle (mostly whitespace), written 64 KiB at a time into a small send
        # buffer, so that what was handed to the socket is close to what nkr read.
        conn.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 65536)
        start, end = b'{"resourceType": "Bundle", "type": "searchset"', b"}"
        conn.sendall(self._head(200, None if chunked else BIG))
        sent = 0
        try:
            chunk = start + b" " * (65536 - len(start))
            while sent < BIG:
                piece = chunk[: BIG - sent - len(end)] or end
                if sent + len(piece) + len(end) == BIG:
                    piece += end
                conn.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
                sent += len(piece)
                chunk = b" " * 65536
            if chunked:
                conn.sendall(b"0\r\n\r\n")
        finally:
            with self.lock:
                self.sent.append(sent)


def _resources(path: str) -> dict[str, Any]:
    """What the well-behaved FHIR server holds for patient p1."""
    resource_type = path.split("/")[2].split("?")[0]
    if resource_type == "Patient":
        return {"resourceType": "Patient", "id": "p1", "birthDate": "1980-05-01"}
    if resource_type == "Observation":
        return bundle([pain(9)])
    if resource_type == "Procedure":
        return bundle([procedure("supervised_exercise")])
    if resource_type == "Condition":
        return bundle([radiculopathy(60)])
    return bundle([])


@pytest.fixture(scope="module")
def fhir() -> Iterator[FakeFhir]:
    server = FakeFhir()
    yield server
    server.close()


@pytest.fixture
def fake(fhir: FakeFhir) -> FakeFhir:
    fhir.reset()
    return fhir


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A loopback port nothing listens on."""
    return free_port()


def fenced_env(fhir: FakeFhir, closed_port: int) -> dict[str, str]:
    servers = [f"{fhir.url}/{b}" for b in BEHAVIOURS] + [f"http://127.0.0.1:{closed_port}/fhir"]
    return {
        "NKR_FHIR_SERVERS": ",".join(servers),
        "NKR_FHIR_TIMEOUT_SECONDS": "1",
        "NKR_FHIR_MAX_RESPONSE_BYTES": str(CAP),
        "NKR_FHIR_MAX_CONCURRENT_FETCHES": "64",
    }


@pytest.fixture(scope="module")
def fenced(server_factory: ServerFactory, fhir: FakeFhir, closed_port: int) -> Cds:
    """A server allowed to fetch from the fake FHIR server's base paths only."""
    return Cds(server_factory(fenced_env(fhir, closed_port)))


def needs_fetch(fhir_server: str, keys: tuple[str, ...] = ("observations", "procedures")) -> Any:
    """A patient-view call that lacks ``keys``, naming ``fhir_server`` and the EHR's token."""
    body = hook_request("patient-view", conditions=[radiculopathy(60)])
    for key in keys:
        del body["prefetch"][key]
    body["fhirServer"] = fhir_server
    body["fhirAuthorization"] = {"access_token": TOKEN, "token_type": "Bearer", "subject": "nkr"}
    return body


def diagnostics(response: httpx.Response, status: int = 412) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome"
    text: str = outcome["issue"][0]["diagnostics"]
    return text


def topics(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [card["source"]["topic"]["code"] for card in response.json()["cards"]]


def concurrently(
    base: str, bodies: list[Any], *, timeout: float = 30
) -> list[tuple[httpx.Response, float]]:
    """Send every body at once (one connection each); each answer with its seconds."""

    async def run() -> list[tuple[httpx.Response, float]]:
        limits = httpx.Limits(max_connections=len(bodies) + 8)
        async with httpx.AsyncClient(base_url=base, timeout=timeout, limits=limits) as client:

            async def one(body: Any) -> tuple[httpx.Response, float]:
                start = time.perf_counter()
                response = await client.post(PATIENT_VIEW, content=orjson.dumps(body), headers=JSON)
                return response, time.perf_counter() - start

            return await asyncio.gather(*(one(b) for b in bodies))

    return run_async(run())


# -- finding 1: no open fetches -----------------------------------------------------------------


def test_by_default_nothing_is_fetched_and_the_token_goes_nowhere(
    app_client: httpx.Client, fake: FakeFhir
) -> None:
    text = diagnostics(Cds.of(app_client).post("patient-view", needs_fetch(f"{fake.url}/fhir")))
    assert text.startswith("prefetch observations, procedures: ")
    assert "fetching is not configured" in text
    assert fake.url.split("//")[1] not in text
    assert fake.seen == []


def test_only_an_allowed_server_is_asked_and_gets_the_token(fenced: Cds, fake: FakeFhir) -> None:
    text = diagnostics(fenced.post("patient-view", needs_fetch(f"{fake.url}/elsewhere")))
    assert "not one this service may fetch from" in text
    assert fake.seen == []
    response = fenced.post("patient-view", needs_fetch(f"{fake.url}/fhir"))
    assert topics(response) == ["overview", "spine-surgeon-assessment"]
    assert sorted(fake.paths()) == [
        "/fhir/Observation?patient=p1&code=http://loinc.org|72514-3",
        "/fhir/Procedure?patient=p1",
    ]
    assert {auth for _, auth in fake.seen} == {f"Bearer {TOKEN}"}


@pytest.mark.parametrize(
    "path",
    [
        "/fhir/../admin",
        "/fhir/%2e%2E/admin",
        "/fhir/../../admin/fhir",
        "/fhirx",
        "/fhir/..%2Fadmin",
    ],
)
def test_a_path_that_leaves_the_allowed_base_is_refused(
    fenced: Cds, fake: FakeFhir, path: str
) -> None:
    text = diagnostics(fenced.post("patient-view", needs_fetch(fake.url + path)))
    assert "not one this service may fetch from" in text
    assert fake.seen == []


def test_an_upper_case_scheme_is_the_same_server_and_never_echoed(
    fenced: Cds, fake: FakeFhir
) -> None:
    response = fenced.post(
        "patient-view", needs_fetch("HTTP" + fake.url.removeprefix("http") + "/fhir")
    )
    assert topics(response) == ["overview", "spine-surgeon-assessment"]
    refused = fenced.post("patient-view", needs_fetch("ftp://u:secret@host/fhir"))
    assert refused.status_code == 400
    assert "secret" not in refused.text


@pytest.mark.parametrize("userinfo", ["user:pw@", "user@", ":@"])
def test_userinfo_in_fhir_server_is_refused(fenced: Cds, fake: FakeFhir, userinfo: str) -> None:
    url = f"http://{userinfo}{fake.url.removeprefix('http://')}/fhir"
    text = diagnostics(fenced.post("patient-view", needs_fetch(url)))
    assert "not one this service may fetch from" in text
    assert "pw" not in text
    assert fake.seen == []


@pytest.mark.parametrize("path", ["/%66hir/", "/fhir/./", "/fhir/x/../", "/fhir//..", "/fhir/"])
def test_the_same_server_written_differently_is_allowed(
    fenced: Cds, fake: FakeFhir, path: str
) -> None:
    response = fenced.post("patient-view", needs_fetch(fake.url + path))
    assert topics(response) == ["overview", "spine-surgeon-assessment"]
    assert sorted(fake.paths()) == [
        "/fhir/Observation?patient=p1&code=http://loinc.org|72514-3",
        "/fhir/Procedure?patient=p1",
    ]


def test_a_next_page_link_that_climbs_out_of_the_base_is_not_followed(
    fenced: Cds, fake: FakeFhir
) -> None:
    response = fenced.post("patient-view", needs_fetch(f"{fake.url}/paging", ("observations",)))
    diagnostics(response)
    assert [p.split("?")[0] for p in fake.paths()] == ["/paging/Observation"]


def test_fetch_failures_are_indistinguishable(
    fenced: Cds, fake: FakeFhir, closed_port: int
) -> None:
    """Closed port, an open port that hangs up, 404, not JSON, a server that never answers:
    the caller learns one thing only (no port-scan oracle)."""
    servers = [
        f"http://127.0.0.1:{closed_port}/fhir",
        f"{fake.url}/close",
        f"{fake.url}/missing",
        f"{fake.url}/notjson",
        f"{fake.url}/hang",
    ]
    texts = {
        server: diagnostics(fenced.post("patient-view", needs_fetch(server))) for server in servers
    }
    assert len(set(texts.values())) == 1, texts
    [text] = set(texts.values())
    assert text == (
        "prefetch observations, procedures: missing from the request, and could not be "
        "fetched from fhirServer"
    )


def test_the_log_says_why_a_fetch_failed_without_url_or_patient(
    fake: FakeFhir, closed_port: int, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    # Everything the app logs: nkr's loggers (which do not propagate) and any other.
    loggers = [logging.getLogger("nkr"), logging.getLogger()]
    for logger in loggers:
        logger.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    marker = "Patient4711x"
    try:
        with in_process(fenced_env(fake, closed_port), tmp_path) as client:
            cds = Cds.of(client)
            for behaviour in ("missing", "close"):
                body = needs_fetch(f"{fake.url}/{behaviour}/", ("observations",))
                body["context"]["patientId"] = marker
                body["prefetch"]["patient"]["id"] = marker
                diagnostics(cds.post("patient-view", body))
            diagnostics(cds.post("patient-view", needs_fetch(f"{fake.url}/elsewhere")))
    finally:
        for logger in loggers:
            logger.removeHandler(caplog.handler)
    log = caplog.text
    assert "WARNING" in log
    assert "HTTP 404" in log
    assert "NKR_FHIR_SERVERS entry 3" in log
    assert "RemoteProtocolError" in log
    assert "NKR_FHIR_SERVERS entry 4" in log
    assert "not on NKR_FHIR_SERVERS" in log
    for secret in (marker, TOKEN, "Observation", "72514-3", "elsewhere", fake.url):
        assert secret not in log


# -- finding 2: no stalls -------------------------------------------------------------------------


def test_a_hanging_fhir_server_does_not_stall_other_calls(fenced: Cds, fake: FakeFhir) -> None:
    """64 calls wait on a FHIR server that never answers; ordinary calls keep their pace."""
    stalled: list[tuple[httpx.Response, float]] = []
    bodies = [needs_fetch(f"{fake.url}/hang")] * 64
    thread = threading.Thread(target=lambda: stalled.extend(concurrently(fenced.base, bodies)))
    thread.start()
    deadline = time.monotonic() + 3
    while not fake.paths() and time.monotonic() < deadline:
        time.sleep(0.005)
    ordinary = hook_request("patient-view", conditions=[radiculopathy(60)])
    latencies = []
    with httpx.Client(base_url=fenced.base, timeout=30) as client:
        end = time.monotonic() + 0.8  # while the fetches hang (NKR_FHIR_TIMEOUT_SECONDS=1)
        while time.monotonic() < end:
            start = time.perf_counter()
            response = client.post(PATIENT_VIEW, content=orjson.dumps(ordinary), headers=JSON)
            latencies.append(time.perf_counter() - start)
            assert response.status_code == 200
    thread.join()
    assert max(latencies) < 0.3, f"ordinary calls stalled up to {max(latencies):.2f} s"
    assert len(latencies) >= 10
    assert len(fake.paths()) == 2 * 64  # every call's two fetches were in flight
    assert {r.status_code for r, _ in stalled} == {412}
    assert max(seconds for _, seconds in stalled) < 2.5  # the 1 s deadline, and some slack


def test_fetches_beyond_the_bound_get_503_with_retry_after(
    server_factory: ServerFactory, fake: FakeFhir, closed_port: int
) -> None:
    env = fenced_env(fake, closed_port) | {"NKR_FHIR_MAX_CONCURRENT_FETCHES": "3"}
    base = server_factory(env)
    answers = concurrently(base, [needs_fetch(f"{fake.url}/hang")] * 10)
    statuses = sorted(r.status_code for r, _ in answers)
    assert statuses == [412] * 3 + [503] * 7
    for response, seconds in answers:
        if response.status_code == 503:
            assert seconds < 0.8  # at once, not after waiting for the FHIR server
            assert response.headers["retry-after"] == "1"
            outcome = response.json()
            assert outcome["issue"][0]["code"] == "throttled"
            assert "NKR_FHIR_MAX_CONCURRENT_FETCHES" in outcome["issue"][0]["diagnostics"]
    # The slots are free again.
    response = Cds(base).post("patient-view", needs_fetch(f"{fake.url}/fhir"))
    assert topics(response) == ["overview", "spine-surgeon-assessment"]


# -- finding 3: bounded answers, one deadline -----------------------------------------------------


@pytest.mark.parametrize("behaviour", ["huge", "chunked"])
def test_a_55_mb_answer_is_cut_off_at_the_cap(fenced: Cds, fake: FakeFhir, behaviour: str) -> None:
    start = time.perf_counter()
    response = fenced.post(
        "patient-view", needs_fetch(f"{fake.url}/{behaviour}", ("observations",))
    )
    elapsed = time.perf_counter() - start
    diagnostics(response)
    assert elapsed < 1.5
    deadline = time.monotonic() + 5
    while not fake.sent and time.monotonic() < deadline:
        time.sleep(0.01)
    [sent] = fake.sent
    # What nkr read (at most the cap and a chunk: tests/fhir/test_fhir_fetch.py counts it) plus
    # what the kernel took into the sockets' buffers before nkr hung up; far from 55 MB.
    assert sent < BIG / 3, sent


def _memory_kib(pid: int, field: str) -> int:
    """A field of /proc/<pid>/status in KiB (VmRSS: now; VmHWM: the peak)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def test_eight_huge_answers_at_once_leave_memory_alone(
    server_process: ServerProcess, fake: FakeFhir, closed_port: int, tmp_path: Path
) -> None:
    """Eight calls at once, each offered a 55 MB Bundle (before: read whole, 903 MB peak)."""
    server_process.env = fenced_env(fake, closed_port)
    server_process.log_path = tmp_path / "server.log"
    base = server_process.start()
    assert server_process.proc is not None
    pid = server_process.proc.pid
    warm = Cds(base).post("patient-view", needs_fetch(f"{fake.url}/fhir"))
    assert warm.status_code == 200
    before = _memory_kib(pid, "VmRSS")
    bodies = [needs_fetch(f"{fake.url}/{b}", ("observations",)) for b in ["chunked", "huge"] * 4]
    answers = concurrently(base, bodies)
    assert {r.status_code for r, _ in answers} == {412}
    assert max(seconds for _, seconds in answers) < 2.5
    peak = _memory_kib(pid, "VmHWM")
    assert peak - before < 40 * 1024, f"peak RSS grew by {(peak - before) / 1024:.0f} MiB"


def test_a_trickling_server_cannot_stretch_the_deadline(fenced: Cds, fake: FakeFhir) -> None:
    start = time.perf_counter()
    response = fenced.post("patient-view", needs_fetch(f"{fake.url}/trickle"))
    elapsed = time.perf_counter() - start
    diagnostics(response)
    assert 0.9 < elapsed < 1.5  # NKR_FHIR_TIMEOUT_SECONDS=1, for the whole call


def test_one_deadline_for_every_key_and_page(fenced: Cds, fake: FakeFhir) -> None:
    """Every key from a server that answers each page in 0.4 s, three pages a key: each
    request is well within the timeout, the call as a whole is not."""
    keys = ("patient", "conditions", "observations", "procedures", "serviceRequests")
    start = time.perf_counter()
    text = diagnostics(fenced.post("patient-view", needs_fetch(f"{fake.url}/slow", keys)))
    assert time.perf_counter() - start < 1.5
    assert text.startswith(f"prefetch {', '.join(keys)}: ")
    assert len(fake.paths()) >= 5
