"""Fetching missing prefetch from a FHIR server: the allowlist's normal form, and fetching from
a small real FHIR server on loopback and from ``httpx.MockTransport`` streams (the byte cap,
the one deadline, the bound on fetches in flight, one client for the app's lifetime)."""

from __future__ import annotations

import asyncio
import gzip
import logging
import threading
import time
import zlib
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from prometheus_client import REGISTRY
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from nkr import InputError
from nkr._app import create_app
from nkr._devserver import free_port
from nkr._settings import Settings
from nkr.fhir import (
    PrefetchUnavailable,
    decode_resource,
    fetch_missing_prefetch,
    fill_template,
    record_from_prefetch,
)
from nkr.fhir._fetch import (
    FETCH_FAILED,
    NO_SERVER,
    NOT_ALLOWED,
    NOT_CONFIGURED,
    FetchBusy,
    Fetcher,
    FetchLimits,
    FhirServers,
    _on_base,
    new_client,
    normalise_base,
)
from nkr.fhir._read import Bundle, Condition, Observation, Patient
from nkr.fhir._transport import Http11Pool
from nkr.guidelines.lumbar_radiculopathy.fhir import PREFETCH as PREFETCH_TEMPLATES
from tests._async import run_async

TOKEN = "secret-access-token"
CONTEXT = {"patientId": "p1", "userId": "Practitioner/u1"}


@dataclass
class FakeFhir:
    """What the fake server saw, and how it should behave."""

    base: str = ""
    seen: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)
    delay_seconds: float = 0.0

    def paths(self) -> list[str]:
        return [path for path, _, _, _ in self.seen]


def _bundle(entries: list[dict[str, Any]], next_url: str | None = None) -> dict[str, Any]:
    links = [{"relation": "self", "url": "x"}]
    if next_url is not None:
        links.append({"relation": "next", "url": next_url})
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "link": links,
        "entry": [{"resource": r} for r in entries],
    }


def _app(state: FakeFhir) -> Starlette:
    def record(request: Request) -> None:
        state.seen.append(
            (
                request.url.path,
                request.url.query,
                request.headers.get("authorization"),
                request.headers.get("accept"),
            )
        )

    async def patient(request: Request) -> Response:
        record(request)
        pid = request.path_params["pid"]
        if pid == "missing":
            return JSONResponse({"resourceType": "OperationOutcome"}, status_code=404)
        if pid == "broken":
            return Response("internal error", status_code=500)
        if pid == "notjson":
            return Response("<html>login</html>", media_type="text/html")
        if pid == "wrongtype":
            return JSONResponse({"resourceType": "Practitioner", "id": pid})
        return JSONResponse({"resourceType": "Patient", "id": pid, "birthDate": "1980-05-01"})

    async def search(request: Request) -> Response:
        record(request)
        rtype = request.path_params["rtype"]
        pid = request.query_params.get("patient")
        page = int(request.query_params.get("page", "1"))
        if pid == "slow":
            await asyncio.sleep(state.delay_seconds)
        if pid == "endless":
            return JSONResponse(
                _bundle([], f"{state.base}/{rtype}?patient=endless&page={page + 1}")
            )
        if pid == "hapi" and page == 1:
            # A next link at the base itself, as HAPI FHIR writes them.
            return JSONResponse(_bundle([], f"{state.base}?_getpages=x&page=2"))
        if pid == "elsewhere":
            return JSONResponse(_bundle([], "http://localhost:1/fhir/steal?page=2"))
        if pid == "broken" and rtype == "Condition":
            return Response("", status_code=500)
        if rtype == "Condition" and page == 1:
            nxt = f"{state.base}/Condition?patient={pid}&page=2"
            return JSONResponse(_bundle([{"resourceType": "Condition", "id": "c1"}], nxt))
        if rtype == "Condition":
            return JSONResponse(_bundle([{"resourceType": "Condition", "id": "c2"}]))
        return JSONResponse(_bundle([{"resourceType": rtype, "id": f"{rtype}-1"}]))

    async def slow_patient(request: Request) -> Response:
        record(request)
        await asyncio.sleep(state.delay_seconds)
        return JSONResponse({"resourceType": "Patient", "id": "slow"})

    async def getpages(request: Request) -> Response:
        record(request)
        return JSONResponse(_bundle([{"resourceType": "Procedure", "id": "from-page-2"}]))

    return Starlette(
        routes=[
            Route("/fhir", getpages),
            Route("/fhir/Patient/slow", slow_patient),
            Route("/fhir/Patient/{pid}", patient),
            Route("/fhir/{rtype}", search),
        ]
    )


@pytest.fixture(scope="module")
def fhir_server() -> Iterator[FakeFhir]:
    state = FakeFhir()
    port = free_port()
    state.base = f"http://127.0.0.1:{port}/fhir"
    config = uvicorn.Config(
        _app(state), host="127.0.0.1", port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the fake FHIR server did not start")
        time.sleep(0.01)
    yield state
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def fake(fhir_server: FakeFhir) -> FakeFhir:
    fhir_server.seen.clear()
    fhir_server.delay_seconds = 0.0
    return fhir_server


@pytest.fixture
def fetch_log(
    caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> pytest.LogCaptureFixture:
    """The log, also once an app in this process has made nkr's loggers stop propagating to
    the root (where caplog listens)."""
    monkeypatch.setattr(logging.getLogger("nkr"), "propagate", True)
    caplog.set_level(logging.DEBUG)
    return caplog


def nkr_log(caplog: pytest.LogCaptureFixture) -> str:
    """What nkr itself logged (httpcore's DEBUG lines are off in a deployment)."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("nkr"))


def streamed(
    status: int = 200,
    content: bytes = b"",
    headers: dict[str, str] | None = None,
    json: object = None,
) -> httpx.Response:
    """A MockTransport answer that streams in like a network one (``content=`` would have
    httpx read, and inflate, it at once)."""
    data = content if json is None else orjson.dumps(json)
    return httpx.Response(status, headers=headers, stream=httpx.ByteStream(data))


def fetch(
    fake: FakeFhir,
    prefetch: dict[str, Any] | None = None,
    *,
    patient_id: str = "p1",
    timeout: float = 2.0,
    token: str | None = TOKEN,
    server: str | None = "",
    max_pages: int = 10,
    allowed: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    auth = None if token is None else {"access_token": token, "token_type": "Bearer"}

    async def run() -> dict[str, Any]:
        async with new_client(2) as client:
            return await fetch_missing_prefetch(
                prefetch=prefetch or {},
                context={**CONTEXT, "patientId": patient_id},
                fhir_server=fake.base if server == "" else server,
                fhir_authorization=auth,
                servers=FhirServers((fake.base,) if allowed is None else allowed),
                client=client,
                limits=FetchLimits(timeout_seconds=timeout, max_pages=max_pages),
                templates=PREFETCH_TEMPLATES,
            )

    return run_async(run())


def ids(bundle: Bundle) -> list[str]:
    """The ids of a fetched search's resources (typed, as a request's prefetch is)."""
    assert type(bundle) is Bundle
    return [str(e.resource.id) for e in bundle.entry or () if e.resource is not None]


def fetches(outcome: str) -> float:
    """The nkr_prefetch_fetches counter (keys) for ``outcome`` so far."""
    value = REGISTRY.get_sample_value("nkr_prefetch_fetches_total", {"outcome": outcome})
    return value or 0.0


def test_every_missing_key_is_fetched_with_the_bearer_token(fake: FakeFhir) -> None:
    ok = fetches("ok")
    result = fetch(fake)
    assert fetches("ok") == ok + 5
    assert set(result) == set(PREFETCH_TEMPLATES)
    assert type(result["patient"]) is Patient
    assert sorted(ids(result["conditions"])) == ["c1", "c2"]
    assert ids(result["procedures"]) == ["Procedure-1"]
    assert {auth for _, _, auth, _ in fake.seen} == {f"Bearer {TOKEN}"}
    assert {accept for _, _, _, accept in fake.seen} == {"application/fhir+json"}
    observation_queries = [q for p, q, _, _ in fake.seen if p == "/fhir/Observation"]
    assert len(observation_queries) == 1
    assert "patient=p1" in observation_queries[0]
    assert "72514-3" in observation_queries[0]
    assert sorted(fake.paths()) == sorted(
        [
            "/fhir/Patient/p1",
            "/fhir/Condition",
            "/fhir/Condition",  # the second page
            "/fhir/Observation",
            "/fhir/Procedure",
            "/fhir/ServiceRequest",
        ]
    )


def test_keys_the_request_has_are_not_fetched_and_null_stays_no_data(fake: FakeFhir) -> None:
    given = {
        "patient": {"resourceType": "Patient", "id": "p1"},
        "conditions": None,
        "observations": _bundle([]),
        "procedures": _bundle([]),
    }
    result = fetch(fake, given)
    assert fake.paths() == ["/fhir/ServiceRequest"]
    assert result["conditions"] is None
    assert result["patient"] is given["patient"]


def test_nothing_missing_needs_no_fhir_server(fake: FakeFhir) -> None:
    given = dict.fromkeys(PREFETCH_TEMPLATES)
    assert fetch(fake, given, server=None, allowed=()) == given
    assert fake.seen == []


def test_without_a_token_no_authorization_header_is_sent(fake: FakeFhir) -> None:
    fetch(fake, token=None)
    assert {auth for _, _, auth, _ in fake.seen} == {None}


@pytest.mark.parametrize(
    ("patient_id", "logged"),
    [
        ("missing", "(error): HTTP 404; NKR_FHIR_SERVERS entry 1"),
        ("broken", "(error): HTTP 500; NKR_FHIR_SERVERS entry 1"),
        ("notjson", "(error): an answer that is not JSON; NKR_FHIR_SERVERS entry 1"),
        ("wrongtype", "(error): an answer that is not a Patient; NKR_FHIR_SERVERS entry 1"),
    ],
)
def test_fhir_server_failures_give_one_text_and_log_why(
    fake: FakeFhir, fetch_log: pytest.LogCaptureFixture, patient_id: str, logged: str
) -> None:
    others = {k: None for k in PREFETCH_TEMPLATES if k != "patient"}
    errors = fetches("error")
    with pytest.raises(PrefetchUnavailable) as info:
        fetch(fake, others, patient_id=patient_id)
    assert info.value.key == "patient"
    assert str(info.value) == f"prefetch patient: {FETCH_FAILED}"
    assert fetches("error") == errors + 1
    [record] = [r for r in fetch_log.records if r.name == "nkr.fhir.fetch"]
    assert record.levelno == logging.WARNING
    assert record.getMessage() == f"prefetch fetch failed {logged}"


def test_a_failing_search_names_every_missing_key(fake: FakeFhir) -> None:
    with pytest.raises(PrefetchUnavailable) as info:
        fetch(fake, {"patient": None}, patient_id="broken")
    assert info.value.key == "conditions, observations, procedures, serviceRequests"
    assert FETCH_FAILED in str(info.value)


def test_a_slow_fhir_server_times_out_quickly(
    fake: FakeFhir, fetch_log: pytest.LogCaptureFixture
) -> None:
    fake.delay_seconds = 2.0
    timeouts = fetches("timeout")
    start = time.monotonic()
    with pytest.raises(PrefetchUnavailable, match=FETCH_FAILED):
        fetch(fake, {"patient": None}, patient_id="slow", timeout=0.3)
    assert time.monotonic() - start < 0.8
    assert fetches("timeout") == timeouts + 4
    assert "prefetch fetch failed (timeout)" in fetch_log.text


def test_endless_paging_stops_at_the_bound(
    fake: FakeFhir, fetch_log: pytest.LogCaptureFixture
) -> None:
    others = {k: None for k in PREFETCH_TEMPLATES if k != "conditions"}
    with pytest.raises(PrefetchUnavailable, match=FETCH_FAILED):
        fetch(fake, others, patient_id="endless", max_pages=3)
    assert len(fake.seen) == 3
    assert "more than 3 pages of results" in fetch_log.text


def test_next_links_at_the_base_itself_are_followed(fake: FakeFhir) -> None:
    others = {k: None for k in PREFETCH_TEMPLATES if k != "procedures"}
    result = fetch(fake, others, patient_id="hapi")
    assert fake.paths() == ["/fhir/Procedure", "/fhir"]
    assert {auth for _, _, auth, _ in fake.seen} == {f"Bearer {TOKEN}"}
    assert ids(result["procedures"]) == ["from-page-2"]


def test_the_token_is_never_sent_to_a_next_link_on_another_server(
    fake: FakeFhir, fetch_log: pytest.LogCaptureFixture
) -> None:
    others = {k: None for k in PREFETCH_TEMPLATES if k != "procedures"}
    with pytest.raises(PrefetchUnavailable, match=FETCH_FAILED):
        fetch(fake, others, patient_id="elsewhere")
    assert fake.paths() == ["/fhir/Procedure"]
    assert "a next-page link off the fhirServer base" in fetch_log.text


def test_an_unreachable_fhir_server_looks_like_any_other_failure(
    fake: FakeFhir, fetch_log: pytest.LogCaptureFixture
) -> None:
    closed = f"http://127.0.0.1:{free_port()}/fhir"
    with pytest.raises(PrefetchUnavailable) as info:
        fetch(fake, {}, server=closed, allowed=(fake.base, closed))
    assert str(info.value).endswith(FETCH_FAILED)
    assert "(error): ConnectError; NKR_FHIR_SERVERS entry 2" in fetch_log.text


@pytest.mark.parametrize(
    ("server", "allowed", "reason"),
    [
        ("", (), NOT_CONFIGURED),
        (None, (), NOT_CONFIGURED),
        (None, None, NO_SERVER),
        ("ftp://127.0.0.1/fhir", None, NOT_ALLOWED),
        ("not a url", None, NOT_ALLOWED),
        ("http://127.0.0.1:9/fhir", None, NOT_ALLOWED),
    ],
)
def test_a_server_not_allowed_is_not_asked(
    fake: FakeFhir, server: str | None, allowed: tuple[str, ...] | None, reason: str
) -> None:
    denied = fetches("denied")
    with pytest.raises(PrefetchUnavailable) as info:
        fetch(fake, {"patient": None}, server=server, allowed=allowed)
    assert str(info.value) == (
        f"prefetch conditions, observations, procedures, serviceRequests: {reason}"
    )
    assert fake.seen == []
    assert fetches("denied") == denied + 4


def test_nothing_is_logged_about_the_patient(
    fake: FakeFhir, fetch_log: pytest.LogCaptureFixture
) -> None:
    fetch(fake, patient_id="patient-4711")
    with pytest.raises(PrefetchUnavailable):
        fetch(fake, {}, patient_id="missing")
    with pytest.raises(PrefetchUnavailable):
        fetch(fake, {}, patient_id="missing", server="http://127.0.0.1:9/fhir")
    logged = nkr_log(fetch_log)
    assert "prefetch fetch failed" in logged
    assert "prefetch fetch refused" in logged
    for secret in ("patient-4711", "Patient/missing", "missing?", TOKEN, "127.0.0.1", "/fhir"):
        assert secret not in logged


def test_errors_never_carry_the_token_or_the_patient_id(fake: FakeFhir) -> None:
    with pytest.raises(PrefetchUnavailable) as info:
        fetch(fake, {}, patient_id="missing")
    assert TOKEN not in str(info.value)
    assert "missing" not in str(info.value).replace("missing from the request", "")


# --- the allowlist's normal form --------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "normal"),
    [
        ("http://host/fhir", "http://host:80/fhir/"),
        ("http://HOST:80/fhir/", "http://host:80/fhir/"),
        ("HTTPS://Host.Example/fhir", "https://host.example:443/fhir/"),
        ("https://host:8443/a/./b/../fhir//", "https://host:8443/a/fhir/"),
        ("http://host/%66%68%49%52", "http://host:80/fhIR/"),
        ("http://host/%7euser", "http://host:80/~user/"),
        ("http://host/fhir/..", "http://host:80/"),
        ("http://host/../../fhir", "http://host:80/fhir/"),
        ("http://host", "http://host:80/"),
        ("http://host./fhir", "http://host:80/fhir/"),
        ("http://münchen.example/fhir", "http://xn--mnchen-3ya.example:80/fhir/"),
        ("http://MÜNCHEN.example/", "http://xn--mnchen-3ya.example:80/"),
        ("http://[::1]:8080/fhir", "http://[::1]:8080/fhir/"),
        ("http://[0:0:0::1]/", "http://[::1]:80/"),
        ("http://127.0.0.1:8080/R4", "http://127.0.0.1:8080/R4/"),
        ("http://fhir_server:8080/fhir", "http://fhir_server:8080/fhir/"),
        ("https://ehr.example/fhir/tenant-1/R4", "https://ehr.example:443/fhir/tenant-1/R4/"),
    ],
)
def test_normal_form(url: str, normal: str) -> None:
    assert normalise_base(url) == normal


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("http://user:pw@host/fhir", "user name or password"),
        ("http://user@host/fhir", "user name or password"),
        ("http://@host/fhir", "user name or password"),
        ("http://host/fhir?x=1", "a query"),
        ("http://host/fhir?", "a query"),
        ("http://host/fhir#x", "a fragment"),
        ("ftp://host/fhir", "not an http(s) URL"),
        ("host/fhir", "not an http(s) URL"),
        ("//host/fhir", "not an http(s) URL"),
        ("http://host/fhir/..%2Fadmin", "characters"),
        ("http://host/fhir/%2e%2e%2fadmin", "characters"),
        ("http://host/a%252e%252e/", "characters"),
        ("http://host/fhir/..;/admin", "characters"),
        ("http://host/fhir/%zz", "characters"),
        ("http://host/fhir/ü", "not a plain"),
        ("http://host\\@evil/fhir", "backslashes"),
        ("http://host/fh ir", "spaces"),
        ("http://ho\tst/fhir", "control characters"),
        ("http://host/fhir\n", "control characters"),
        ("http://host:0/fhir", "not a plain"),
        ("http://host:99999/fhir", "valid host and port"),
        ("http://host:x/fhir", "valid host and port"),
        ("http://[::1/fhir", "valid host and port"),
        ("http:///fhir", "no usable host"),
        ("http://ho%73t/fhir", "no usable host"),
        ("http://[fe80::1%25eth0]/fhir", "no usable host"),
        ("http://2130706433/fhir", "dotted IPv4"),
        ("http://127.1/fhir", "dotted IPv4"),
        ("http://127.000.0.1/fhir", "dotted IPv4"),
        ("http://0x7f.0.0.1/fhir", "dotted IPv4"),
        ("http://-host-/fhir", "host name"),
        ("http://ho..st/fhir", "host name"),
    ],
)
def test_what_is_no_plain_base_is_refused(url: str, why: str) -> None:
    with pytest.raises(ValueError, match=why.replace("(", r"\(").replace(")", r"\)")):
        normalise_base(url)


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("http://host/fhir", ("http://host:80/fhir/", 2)),
        ("http://HOST:80/fhir/", ("http://host:80/fhir/", 2)),
        ("http://host/%66hir", ("http://host:80/fhir/", 2)),
        ("http://host/fhir/tenant/../tenant-2", ("http://host:80/fhir/tenant-2/", 2)),
        ("https://ehr.example/R4/", ("https://ehr.example:443/R4/", 3)),
        ("http://host/fhir/../../x", None),
        ("http://host/fhir/../admin", None),
        ("http://user:pw@host/fhir", None),
        ("http://host/fhirx", None),
        ("https://host/fhir", None),
        ("http://host:8080/fhir", None),
        ("http://host.evil/fhir", None),
        ("http://other/fhir", None),
    ],
)
def test_allowlist_match(url: str, match: tuple[str, int] | None) -> None:
    servers = FhirServers(["http://other:9/x", "http://host/fhir", "https://EHR.example:443/R4"])
    assert servers.match(url) == match


def test_an_allowlist_entry_that_is_no_base_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match=r"^entry 2: a user name or password") as info:
        FhirServers(["http://ok/fhir", "http://admin:s3cret@host/fhir"])
    assert "s3cret" not in str(info.value)
    assert not FhirServers([])


@pytest.mark.parametrize(
    ("link", "url"),
    [
        ("http://host/fhir/Condition?page=2", "http://host:80/fhir/Condition?page=2"),
        ("http://HOST:80/fhir?_getpages=x", "http://host:80/fhir?_getpages=x"),
        ("http://host/fhir/./Condition?p=a|b", "http://host:80/fhir/Condition?p=a|b"),
        ("http://host/fhir/../admin?page=2", None),
        ("http://host/fhirx?page=2", None),
        ("http://host:81/fhir?page=2", None),
        ("https://host/fhir?page=2", None),
        ("http://user:pw@host/fhir?page=2", None),
        ("http://host/fhir/..;/admin?page=2", None),
        ("/fhir?page=2", None),
    ],
)
def test_next_links_are_held_to_the_base(link: str, url: str | None) -> None:
    assert _on_base(link, "http://host:80/fhir/") == url


# --- the byte cap, while streaming ------------------------------------------------------------

CHUNK = 65536
ALLOWED = "http://ehr.example/fhir"


class Counted(httpx.AsyncByteStream):
    """A body of ``total`` bytes (forever: None) in 64 KiB chunks, counting what was read."""

    def __init__(self, total: int | None, first: bytes = b"", delay: float = 0.0) -> None:
        self.total, self.first, self.delay = total, first, delay
        self.read = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = self.first + b" " * (CHUNK - len(self.first))
        while self.total is None or self.read < self.total:
            if self.delay:
                await asyncio.sleep(self.delay)
            piece = chunk if self.total is None else chunk[: self.total - self.read]
            self.read += len(piece)
            yield piece
            chunk = b" " * CHUNK


Handler = Callable[[httpx.Request], httpx.Response]


def run_fetch(
    handler: Handler | Callable[[httpx.Request], Any],
    *,
    missing: tuple[str, ...] = ("observations",),
    limits: FetchLimits | None = None,
) -> dict[str, Any]:
    prefetch = {k: None for k in PREFETCH_TEMPLATES if k not in missing}

    async def run() -> dict[str, Any]:
        async with new_client(1, httpx.MockTransport(handler)) as client:
            return await fetch_missing_prefetch(
                prefetch=prefetch,
                context=CONTEXT,
                fhir_server=ALLOWED,
                fhir_authorization=None,
                servers=FhirServers([ALLOWED]),
                client=client,
                limits=limits or FetchLimits(timeout_seconds=2, max_response_bytes=1_000_000),
                templates=PREFETCH_TEMPLATES,
            )

    return run_async(run())


@pytest.mark.parametrize("length", [None, 55_000_000])
def test_a_huge_answer_is_given_up_at_the_cap(
    fetch_log: pytest.LogCaptureFixture, length: int | None
) -> None:
    body = Counted(55_000_000, b'{"resourceType": "Bundle", "type": "searchset"')
    headers = {} if length is None else {"Content-Length": str(length)}
    too_large = fetches("too-large")
    start = time.perf_counter()
    with pytest.raises(PrefetchUnavailable, match=FETCH_FAILED):
        run_fetch(lambda _: httpx.Response(200, headers=headers, stream=body))
    assert time.perf_counter() - start < 0.5
    # Read: at most the cap and one chunk; with Content-Length, nothing at all.
    assert body.read <= (1_000_000 + CHUNK if length is None else 0)
    assert fetches("too-large") == too_large + 1
    assert "(too-large): an answer over NKR_FHIR_MAX_RESPONSE_BYTES" in fetch_log.text


def test_a_gzip_bomb_is_inflated_no_further_than_the_cap() -> None:
    bomb = gzip.compress(b'{"resourceType": "Bundle"' + b" " * 50_000_000 + b"}", 1)
    assert len(bomb) < 300_000  # 50 MB inflated
    inflated: list[int] = []
    original = zlib.decompressobj

    def counting(*args: Any, **kwargs: Any) -> Any:
        inflate = original(*args, **kwargs)

        class Counting:
            eof = False

            def decompress(self, data: bytes, max_length: int) -> bytes:
                out = inflate.decompress(data, max_length)
                inflated.append(len(out))
                return out

        return Counting()

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(zlib, "decompressobj", counting)
        with pytest.raises(PrefetchUnavailable, match=FETCH_FAILED):
            run_fetch(lambda _: streamed(headers={"Content-Encoding": "gzip"}, content=bomb))
    assert 1_000_000 < sum(inflated) <= 1_000_001


def test_a_gzip_answer_within_the_cap_is_read() -> None:
    page = orjson.dumps(_bundle([{"resourceType": "Observation", "id": "o1"}]))
    seen: list[str | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("accept-encoding"))
        return streamed(headers={"Content-Encoding": "gzip"}, content=gzip.compress(page))

    result = run_fetch(answer)
    assert ids(result["observations"]) == ["o1"]
    assert seen == ["gzip"]


@pytest.mark.parametrize("encoding", ["br", "deflate", "gzip, gzip"])
def test_other_content_encodings_are_refused(encoding: str) -> None:
    with pytest.raises(PrefetchUnavailable, match=FETCH_FAILED):
        run_fetch(lambda _: streamed(headers={"Content-Encoding": encoding}, content=b"{}"))


@pytest.mark.parametrize(("each", "fits"), [(150_000, True), (300_000, False)])
def test_the_cap_is_for_the_whole_call(each: int, fits: bool) -> None:
    """Five keys answering 150 kB each fit in 1 MB; 300 kB each do not, together."""

    def answer(request: httpx.Request) -> httpx.Response:
        doc: dict[str, Any] = (
            {"resourceType": "Patient", "id": "p1"}
            if "/Patient/" in request.url.path
            else {"resourceType": "Bundle", "type": "searchset", "entry": []}
        )
        raw = orjson.dumps(doc)
        return streamed(content=raw[:-1] + b" " * (each - len(raw)) + b"}")

    missing = tuple(PREFETCH_TEMPLATES)
    if fits:
        assert set(run_fetch(answer, missing=missing)) == set(PREFETCH_TEMPLATES)
    else:
        with pytest.raises(PrefetchUnavailable, match=FETCH_FAILED):
            run_fetch(answer, missing=missing)


# --- one deadline -----------------------------------------------------------------------------


def test_a_slow_drip_cannot_stretch_the_deadline(fetch_log: pytest.LogCaptureFixture) -> None:
    """A byte every 50 ms: every read is well within any read timeout, the call is not."""
    body = Counted(None, b"{", delay=0.05)
    start = time.perf_counter()
    with pytest.raises(PrefetchUnavailable, match=FETCH_FAILED):
        run_fetch(
            lambda _: httpx.Response(200, stream=body),
            limits=FetchLimits(timeout_seconds=0.5, max_response_bytes=100_000_000),
        )
    assert 0.45 < time.perf_counter() - start < 0.7
    assert "(timeout)" in fetch_log.text


def test_one_deadline_for_all_pages_and_keys() -> None:
    """Each page answers in 0.15 s; six pages a key do not fit in 0.5 s."""

    async def answer(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.15)
        page = int(request.url.params.get("page", "1"))
        nxt = f"{ALLOWED}/{request.url.path.rsplit('/', 1)[-1]}?page={page + 1}"
        return streamed(json=_bundle([], nxt if page < 6 else None))

    start = time.perf_counter()
    with pytest.raises(PrefetchUnavailable, match=FETCH_FAILED):
        run_fetch(
            answer,
            missing=("conditions", "observations", "procedures"),
            limits=FetchLimits(timeout_seconds=0.5),
        )
    assert time.perf_counter() - start < 0.7


# --- fetches in flight, one client ------------------------------------------------------------


def test_beyond_the_bound_a_fetch_is_busy_at_once() -> None:
    release = asyncio.Event()

    async def answer(request: httpx.Request) -> httpx.Response:
        await release.wait()
        return streamed(json=_bundle([]))

    async def run() -> None:
        async with new_client(1, httpx.MockTransport(answer)) as client:
            fetcher = Fetcher(FhirServers([ALLOWED]), client, FetchLimits(), max_in_flight=2)

            async def one() -> dict[str, Any]:
                return await fetcher.fetch_missing(
                    prefetch={"patient": None, "conditions": None},
                    context=CONTEXT,
                    fhir_server=ALLOWED,
                    fhir_authorization=None,
                    templates=PREFETCH_TEMPLATES,
                )

            first, second = asyncio.create_task(one()), asyncio.create_task(one())
            await asyncio.sleep(0.05)
            busy = fetches("busy")
            start = time.perf_counter()
            with pytest.raises(FetchBusy, match="NKR_FHIR_MAX_CONCURRENT_FETCHES") as info:
                await one()
            assert time.perf_counter() - start < 0.01
            assert str(info.value).startswith("prefetch observations, procedures, serviceRe")
            assert fetches("busy") == busy + 3
            release.set()
            await first, await second
            assert set(await one()) == set(PREFETCH_TEMPLATES)  # a slot is free again

    run_async(run())


def test_the_app_fetches_with_one_client_for_its_lifetime(
    fake: FakeFhir, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = Settings(fhir_servers=(fake.base,), fhir_max_concurrent_fetches=3)
    app = create_app(settings)
    body = {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "fhirServer": fake.base,
        "context": {"userId": "Practitioner/u1", "patientId": "p1"},
        "prefetch": {"patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1980-05-01"}},
    }
    clients: list[httpx.AsyncClient] = []
    original = httpx.AsyncClient.__init__

    def counting(self: httpx.AsyncClient, *args: Any, **kwargs: Any) -> None:
        clients.append(self)
        original(self, *args, **kwargs)

    async def run() -> None:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as ehr:
            monkeypatch.setattr(httpx.AsyncClient, "__init__", counting)
            async with app.router.lifespan_context(app):
                assert len(clients) == 1
                for _ in range(3):
                    response = await ehr.post(
                        "/cds-services/nkr-lumbal-radikulopati-patient-view",
                        content=orjson.dumps(body),
                        headers={"Content-Type": "application/json"},
                    )
                    assert response.status_code == 200, response.text
            assert len(clients) == 1
            assert clients[0].is_closed

    run_async(run())
    transport = clients[0]._transport
    assert isinstance(transport, Http11Pool)
    assert transport.limits.max_connections == 3 * len(PREFETCH_TEMPLATES)


# --- templates and prefetch shapes ------------------------------------------------------------


def test_the_templates_are_the_issue_s() -> None:
    assert dict(PREFETCH_TEMPLATES) == {
        "patient": "Patient/{{context.patientId}}",
        "conditions": "Condition?patient={{context.patientId}}",
        "observations": "Observation?patient={{context.patientId}}&code=http://loinc.org|72514-3",
        "procedures": "Procedure?patient={{context.patientId}}",
        "serviceRequests": "ServiceRequest?patient={{context.patientId}}",
    }


def test_fill_template() -> None:
    assert fill_template("Patient/{{context.patientId}}", CONTEXT) == "Patient/p1"
    assert fill_template("Condition?patient={{ context.patientId }}", CONTEXT) == (
        "Condition?patient=p1"
    )


@pytest.mark.parametrize(
    "patient_id", [None, "", "..", ".", "../Practitioner/x", "p1&_count=1000", 7, "a" * 65]
)
def test_fill_template_accepts_only_fhir_ids(patient_id: object) -> None:
    with pytest.raises(InputError, match=r"^context.patientId: required by the prefetch"):
        fill_template("Patient/{{context.patientId}}", {"patientId": patient_id})


def test_fill_template_refuses_unknown_tokens() -> None:
    with pytest.raises(ValueError, match="unsupported prefetch token"):
        fill_template("Practitioner/{{userPractitionerId}}", CONTEXT)


def test_a_record_from_prefetch_holds_each_resource_by_type_with_its_path() -> None:
    condition = {"resourceType": "Condition", "id": "c1"}
    outcome = {"resourceType": "OperationOutcome"}
    encounter = {"resourceType": "Encounter", "id": "e1"}
    prefetch = {
        "patient": decode_resource({"resourceType": "Patient", "id": "p1"}),
        "conditions": decode_resource(
            {
                "resourceType": "Bundle",
                "entry": [{}, {"resource": outcome}, {"resource": condition}],
            }
        ),
        "encounters": decode_resource(_bundle([encounter])),
        "observations": None,
    }
    record = record_from_prefetch(prefetch)
    assert record.patient is not None
    assert record.path(record.patient) == "$.prefetch.patient"
    [found] = record.of(Condition)
    assert found.id == "c1"
    assert record.path(found) == "$.prefetch.conditions.entry[2].resource"
    assert record.of(Observation) == []
    assert record.types() == {Condition}  # the others skipped


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ([], r"^\$\.prefetch\.conditions: expected a JSON object, got a JSON array"),
        (
            {"resourceType": "Bundle", "entry": {}},
            r"^\$\.prefetch\.conditions\.entry: expected a JSON array",
        ),
        (
            {"resourceType": "Bundle", "entry": [1]},
            r"^\$\.prefetch\.conditions\.entry\[0\]: expected a JSON object",
        ),
        (
            {"resourceType": "Bundle", "entry": [{"resource": "x"}]},
            r"^\$\.prefetch\.conditions\.entry\[0\]\.resource: expected a JSON object",
        ),
    ],
)
def test_decoding_a_prefetch_value_names_the_path(value: object, message: str) -> None:
    with pytest.raises(InputError, match=message):
        decode_resource(orjson.dumps(value), "$.prefetch.conditions")
