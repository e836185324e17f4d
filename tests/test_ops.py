"""What operators run nkr with: /healthz, /readyz, Prometheus /metrics, and ``--workers N``.

In-process (httpx's ASGITransport) for the answers themselves; over real HTTP for readiness
with the database locked, and for a server with two worker processes, whose metrics must be
the sum over both and whose shared state (issued cards, feedback) must come out exact in
``nkr feedback report`` however the calls were spread over the workers.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import shutil
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from nkr import _ops
from nkr._app import create_app
from nkr._devserver import start_server, stop_server
from nkr._metrics import MULTIPROC_FOLDER, worker_files
from nkr._package import registry
from nkr._settings import Settings
from nkr.cdshooks import DB_NAME
from nkr.web._cds import hook_request

TOKEN = "metrics-token-" + "s3cr3t" * 4
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PATIENT_VIEW = "nkr-lumbal-radikulopati-patient-view"
# Route templates (labels) of service calls and feedback: one route per service, or the
# templated one (which any other id reaches).
ANY_SERVICE_ROUTE = "/cds-services/{service_id}"
CALL_ROUTES = (f"/cds-services/{PATIENT_VIEW}", ANY_SERVICE_ROUTE)
FEEDBACK_ROUTES = (f"/cds-services/{PATIENT_VIEW}/feedback", f"{ANY_SERVICE_ROUTE}/feedback")
JSON = {"Content-Type": "application/json"}


def _sample(patient_id: str) -> Any:
    return next(s for s in registry().default.samples.values() if s.patient["id"] == patient_id)


def _call_body(patient_id: str) -> bytes:
    today = Settings.from_env({}).today()
    return orjson.dumps(hook_request(_sample(patient_id), "patient-view", today))


def _samples_of(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus exposition by (name, labels)."""
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _value(text: str, name: str, **labels: str) -> float:
    return _samples_of(text).get((name, frozenset(labels.items())), 0.0)


class InProcess:
    """Requests to the app in-process, one event loop per request (no lifespan: the feedback
    store's background task does not run, which these tests do not need)."""

    def __init__(self, settings: Settings) -> None:
        self.app = create_app(settings)

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        async def run() -> httpx.Response:
            transport = httpx.ASGITransport(app=self.app)
            async with httpx.AsyncClient(
                transport=transport, base_url="http://127.0.0.1"
            ) as client:
                return await client.request(method, path, **kwargs)

        # In a thread of its own: the browser tests' Playwright may hold this thread's loop.
        with ThreadPoolExecutor(max_workers=1) as thread:
            return thread.submit(asyncio.run, run()).result()

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)


@pytest.fixture
def plain(tmp_path: Path) -> InProcess:
    """The app on the defaults: auth off, metrics off."""
    return InProcess(Settings(data_dir=tmp_path))


@pytest.fixture
def metered(tmp_path: Path) -> InProcess:
    """The app with metrics on."""
    return InProcess(Settings(data_dir=tmp_path, metrics_token=TOKEN))


# -- /healthz and /readyz -------------------------------------------------------------------


def test_healthz_and_readyz_need_no_token_with_jwt_auth_on(tmp_path: Path) -> None:
    key = ec.generate_private_key(ec.SECP384R1())
    jwk = ECAlgorithm.to_jwk(key.public_key(), as_dict=True) | {"kid": "k1", "alg": "ES384"}
    jwks = tmp_path / "jwks.json"
    jwks.write_bytes(orjson.dumps({"keys": [jwk]}))
    app = InProcess(
        Settings(
            data_dir=tmp_path,
            jwt_issuers=(f"https://ehr.example={jwks}",),
            public_base_url="http://127.0.0.1",
        )
    )
    # The services themselves are closed without a JWT ...
    call = app.request(
        "POST", f"/cds-services/{PATIENT_VIEW}", content=_call_body("sample-anna"), headers=JSON
    )
    assert call.status_code == 401
    # ... the probes are not.
    health = app.get("/healthz")
    assert (health.status_code, health.json()) == (200, {"status": "ok"})
    assert app.request("HEAD", "/healthz").status_code == 200
    assert app.get("/readyz").status_code == 200


def test_readyz_reports_the_guideline_loaded_and_the_database_writable(plain: InProcess) -> None:
    response = plain.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"guideline": "ok", "database": "ok"}}
    assert response.headers["cache-control"] == "no-store"


def test_readyz_is_503_while_another_process_holds_the_database_write_lock(
    tmp_path: Path, plain: InProcess
) -> None:
    # What a stuck writer (or a backup tool holding the lock) does: as root too.
    holder = sqlite3.connect(tmp_path / DB_NAME, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        started = time.monotonic()
        response = plain.get("/readyz")
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not ready"
    assert body["checks"]["guideline"] == "ok"
    assert "locked" in body["checks"]["database"]
    assert waited < 2 * _ops.DATABASE_WAIT_SECONDS + 1  # inside a probe's timeout
    # The lock let go: ready again, once the last check's answer is old enough.
    time.sleep(_ops.READY_CACHE_SECONDS + 0.05)
    assert plain.get("/readyz").status_code == 200


def test_readyz_runs_one_check_at_a_time_however_many_ask(
    plain: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Anyone may call /readyz: a flood must not turn into a flood of database checks.
    checked: list[float] = []

    def slow_check(path: Path) -> str:
        checked.append(time.monotonic())
        time.sleep(0.2)
        return "ok"

    monkeypatch.setattr(_ops, "check_database", slow_check)

    async def flood() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=plain.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await asyncio.gather(*(client.get("/readyz") for _ in range(50)))

    with ThreadPoolExecutor(max_workers=1) as thread:
        first = thread.submit(asyncio.run, flood()).result()
        again = thread.submit(asyncio.run, flood()).result()
    assert len(checked) == 1
    # While the first check ran, the others were told so (not ready yet); then its answer.
    assert {r.json()["checks"]["database"] for r in first} <= {"ok", "being checked"}
    assert {r.status_code for r in again} == {200}


def test_readyz_is_503_when_the_database_cannot_be_opened(tmp_path: Path, plain: InProcess) -> None:
    # Root ignores file modes, so a read-only data folder does not fail as root; a folder
    # where the database file should be does, for everyone.
    database = tmp_path / DB_NAME
    database.rename(tmp_path / "moved.sqlite3")
    database.mkdir()
    response = plain.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"].startswith("cannot open the database")
    assert str(tmp_path) not in response.text  # no file system paths for anyone who asks


def test_readyz_is_503_when_the_disk_is_full(
    plain: InProcess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A full disk cannot be made here without privileges; what the check reads can.
    full = shutil._ntuple_diskusage(total=10**9, used=10**9 - 4096, free=4096)
    monkeypatch.setattr("nkr._ops.shutil.disk_usage", lambda _: full)
    response = plain.get("/readyz")
    assert response.status_code == 503
    assert "disk is full" in response.json()["checks"]["database"]


def test_ops_endpoints_are_not_in_the_openapi_document(metered: InProcess) -> None:
    paths = metered.get("/openapi.json").json()["paths"]
    assert not {"/healthz", "/readyz", "/metrics"} & set(paths)


# -- /metrics ---------------------------------------------------------------------------------


def test_metrics_are_off_without_a_token_setting(plain: InProcess) -> None:
    assert plain.get("/metrics", headers=AUTH).status_code == 404


@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        f"Bearer {TOKEN[:-1]}",
        f"Bearer {TOKEN[:-1]}X",
        f"Bearer {TOKEN}X",
        f"Basic {TOKEN}",
        TOKEN,
    ],
)
def test_metrics_need_the_exact_bearer_token(metered: InProcess, authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    response = metered.get("/metrics", headers=headers)
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["resourceType"] == "OperationOutcome"
    assert "nkr_http_requests" not in response.text


def test_metrics_with_the_token(metered: InProcess) -> None:
    response = metered.get("/metrics", headers=AUTH)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert response.headers["cache-control"] == "no-store"
    for family in (
        "nkr_http_requests",
        "nkr_http_request_duration_seconds",
        "nkr_cds_calls",
        "nkr_cds_call_duration_seconds",
        "nkr_prefetch_fetches",
        "nkr_feedback",
        "nkr_jwt_rejections",
    ):
        assert f"# HELP {family}" in response.text


def test_metrics_count_by_route_template_and_service_never_by_path(metered: InProcess) -> None:
    before = metered.get("/metrics", headers=AUTH).text
    body = _call_body("sample-bent")
    assert metered.request(
        "POST", f"/cds-services/{PATIENT_VIEW}", content=body, headers=JSON
    ).is_success
    # An unknown service, an unknown page and an odd method, all with made-up identifiers.
    assert (
        metered.request(
            "POST", "/cds-services/Patient-0101701234", content=body, headers=JSON
        ).status_code
        == 404
    )
    assert metered.get("/journal/0101701234/sample-bent").status_code == 404
    assert metered.request("PROPFIND", "/healthz").status_code == 405
    after = metered.get("/metrics", headers=AUTH).text

    def delta(name: str, routes: tuple[str, ...] = ("",), **labels: str) -> float:
        return sum(
            _value(after, name, **labels, **({"route": r} if r else {}))
            - _value(before, name, **labels, **({"route": r} if r else {}))
            for r in routes
        )

    req = "nkr_http_requests_total"
    assert delta(req, CALL_ROUTES, method="POST", status="200") == 1
    assert delta(req, (ANY_SERVICE_ROUTE,), method="POST", status="404") == 1
    assert delta(req, route="unmatched", method="GET", status="404") == 1
    assert delta(req, route="/healthz", method="other", status="405") == 1
    assert delta(req, route="/metrics", method="GET", status="200") == 1
    calls = "nkr_cds_calls_total"
    assert delta(calls, service=PATIENT_VIEW, status="200") == 1
    assert delta(calls, service="unknown", status="404") == 1
    assert delta("nkr_cds_call_duration_seconds_count", service=PATIENT_VIEW) == 1
    assert delta("nkr_http_request_duration_seconds_count", CALL_ROUTES) == 2
    # Nothing a caller sent becomes a label: no id, no path, no method name.
    for sent in ("0101701234", "sample-bent", "journal", "PROPFIND", "Patient-"):
        assert sent not in after


def test_integrators_page_calls_are_not_counted_as_ehr_calls(metered: InProcess) -> None:
    before = metered.get("/metrics", headers=AUTH).text
    page = metered.get(f"/integration?service={PATIENT_VIEW}&sample=2-surgeon-due")
    assert page.status_code == 200
    after = metered.get("/metrics", headers=AUTH).text
    req = "nkr_http_requests_total"
    assert _value(after, req, route="/integration", method="GET", status="200") == 1
    assert _value(after, "nkr_cds_calls_total", service=PATIENT_VIEW, status="200") == _value(
        before, "nkr_cds_calls_total", service=PATIENT_VIEW, status="200"
    )
    assert _value(after, req, route="/cds-services", method="GET", status="200") == _value(
        before, req, route="/cds-services", method="GET", status="200"
    )


# -- over real HTTP ---------------------------------------------------------------------------


@dataclass
class Served:
    base: str
    data_dir: Path


@pytest.fixture(scope="module")
def one_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("one-worker")
    proc, base = start_server({"NKR_METRICS_TOKEN": TOKEN}, data_dir)
    yield Served(base, data_dir)
    stop_server(proc)


def test_readyz_over_http_goes_503_while_the_database_is_locked(one_worker: Served) -> None:
    assert httpx.get(f"{one_worker.base}/readyz").status_code == 200
    holder = sqlite3.connect(one_worker.data_dir / DB_NAME, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        time.sleep(_ops.READY_CACHE_SECONDS + 0.05)  # the last answer is old enough
        locked = httpx.get(f"{one_worker.base}/readyz", timeout=5)
        # The process itself is fine, and says so at once.
        started = time.monotonic()
        health = httpx.get(f"{one_worker.base}/healthz", timeout=5)
        health_seconds = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert locked.status_code == 503
    assert "locked" in locked.json()["checks"]["database"]
    assert health.status_code == 200
    assert health_seconds < _ops.DATABASE_WAIT_SECONDS
    time.sleep(_ops.READY_CACHE_SECONDS + 0.05)
    assert httpx.get(f"{one_worker.base}/readyz").status_code == 200


def test_probes_answer_to_a_pod_address_in_the_host_header(one_worker: Served) -> None:
    # An orchestrator calls a pod by its own address, which is no allowed host of the app.
    for path in ("/healthz", "/readyz"):
        response = httpx.get(f"{one_worker.base}{path}", headers={"Host": "10.1.2.3:8000"})
        assert response.status_code == 200, (path, response.text)
    scraped = httpx.get(f"{one_worker.base}/metrics", headers={**AUTH, "Host": "10.1.2.3:8000"})
    assert scraped.status_code == 200


# -- two worker processes ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    data_dir = tmp_path_factory.mktemp("two-workers")
    # Counts left in the folder by an earlier run must not be added to this one's.
    stale = data_dir / MULTIPROC_FOLDER
    stale.mkdir()
    shutil.copy(Path(__file__), stale / "counter_1.db")
    proc, base = start_server({"NKR_METRICS_TOKEN": TOKEN}, data_dir, args=("--workers", "2"))
    yield Served(base, data_dir)
    stop_server(proc)


def _many_connections(jobs: list[tuple[str, str, bytes]]) -> list[httpx.Response]:
    """Each request on a connection of its own, eight at a time: the kernel hands new
    connections to whichever worker accepts first, so both workers serve."""

    def send(job: tuple[str, str, bytes]) -> httpx.Response:
        method, url, body = job
        with httpx.Client(timeout=30) as client:
            return client.request(method, url, content=body, headers=JSON)

    with ThreadPoolExecutor(max_workers=8) as pool:
        return list(pool.map(send, jobs))


def _per_worker(data_dir: Path) -> dict[str, dict[tuple[str, frozenset[tuple[str, str]]], float]]:
    """Each worker's own counts, from its file in the multiprocess folder."""
    counts = {}
    for path in worker_files(data_dir / MULTIPROC_FOLDER):
        if not Path(path).name.startswith("counter_"):
            continue
        metrics = MultiProcessCollector.merge([path], accumulate=False)  # type: ignore[no-untyped-call]
        counts[Path(path).stem] = {
            (s.name, frozenset(s.labels.items())): s.value for m in metrics for s in m.samples
        }
    return counts


def test_two_workers_metrics_are_the_sum_over_both(two_workers: Served) -> None:
    url = f"{two_workers.base}/cds-services/{PATIENT_VIEW}"
    # Under 18: no card, so that these calls leave the feedback report alone.
    body = _call_body("sample-emma")
    key = ("nkr_cds_calls_total", frozenset({("service", PATIENT_VIEW), ("status", "200")}))

    def calls(counts: dict[str, Any]) -> dict[str, float]:
        return {worker: c.get(key, 0.0) for worker, c in counts.items()}

    def scraped() -> str:
        with httpx.Client(timeout=10) as client:  # a new connection: either worker
            return client.get(f"{two_workers.base}/metrics", headers=AUTH).text

    before, before_text = calls(_per_worker(two_workers.data_dir)), scraped()
    sent = 0
    # Until both workers have served some (bounded): the sum must then be exact.
    while sent < 400:
        responses = _many_connections([("POST", url, body)] * 40)
        assert all(r.status_code == 200 for r in responses)
        sent += len(responses)
        now = calls(_per_worker(two_workers.data_dir))
        if len(now) == 2 and all(n > before.get(w, 0.0) for w, n in now.items()):
            break
    now = calls(_per_worker(two_workers.data_dir))
    assert len(now) == 2, now  # two workers' files, and the stale file is gone
    served = {w: n - before.get(w, 0.0) for w, n in now.items()}
    assert all(n > 0 for n in served.values()), served
    assert sum(served.values()) == sent
    # Whichever worker answers the scrape, it shows the sum over both.
    for _ in range(6):
        text = scraped()
        for name, labels in (
            ("nkr_cds_calls_total", {"service": PATIENT_VIEW, "status": "200"}),
            ("nkr_cds_call_duration_seconds_count", {"service": PATIENT_VIEW}),
        ):
            assert _value(text, name, **labels) - _value(before_text, name, **labels) == sent
        http = "nkr_http_requests_total"
        assert sent == sum(
            _value(text, http, route=r, method="POST", status="200")
            - _value(before_text, http, route=r, method="POST", status="200")
            for r in CALL_ROUTES
        )


def _report(data_dir: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "nkr", "feedback", "report", "--json", "--data-dir", str(data_dir)],
        capture_output=True,
        check=True,
        timeout=60,
    )
    return {row["topic"]: row for row in orjson.loads(done.stdout)}


def _feedback(card: dict[str, Any], outcome: str) -> bytes:
    item: dict[str, Any] = {
        "card": card["uuid"],
        "outcome": outcome,
        "outcomeTimestamp": dt.datetime.now(dt.UTC).isoformat(),
    }
    if outcome == "accepted":
        item["acceptedSuggestions"] = [{"id": card["suggestions"][0]["uuid"]}]
    else:
        reason = card["overrideReasons"][0]
        item["overrideReason"] = {"reason": {"system": reason["system"], "code": reason["code"]}}
    return orjson.dumps({"feedback": [item]})


def test_two_workers_share_issued_cards_and_feedback_exactly(two_workers: Served) -> None:
    base = two_workers.base
    url = f"{base}/cds-services/{PATIENT_VIEW}"
    surgeon, red_flag = _call_body("sample-bent"), _call_body("sample-dan")
    before = _per_worker(two_workers.data_dir)
    # 30 calls with an overview and a spine-surgeon card each, 20 with a safety card.
    responses = _many_connections([("POST", url, surgeon)] * 30 + [("POST", url, red_flag)] * 20)
    assert all(r.status_code == 200 for r in responses), [r.text for r in responses][:3]
    cards: dict[str, list[dict[str, Any]]] = {}
    for response in responses:
        for card in response.json()["cards"]:
            cards.setdefault(card["source"]["topic"]["code"], []).append(card)
    assert {t: len(c) for t, c in cards.items()} == {
        "overview": 30,
        "spine-surgeon-assessment": 30,
        "safety": 20,
    }
    # Feedback at once, on new connections: much of it reaches the worker that did not issue
    # the card, before that worker has written the card down.
    feedback_url = f"{url}/feedback"
    jobs = (
        [
            ("POST", feedback_url, _feedback(c, "accepted"))
            for c in cards["spine-surgeon-assessment"]
        ]
        + [("POST", feedback_url, _feedback(c, "overridden")) for c in cards["safety"]]
        + [("POST", feedback_url, _feedback(c, "overridden")) for c in cards["overview"][:10]]
    )
    answers = _many_connections(jobs)
    assert [r.status_code for r in answers] == [200] * len(jobs), [
        r.text for r in answers if r.status_code != 200
    ][:3]

    # Both workers took calls and feedback.
    after = _per_worker(two_workers.data_dir)
    assert len(after) == 2

    def served(worker: str, routes: tuple[str, ...]) -> float:
        keys = [
            (
                "nkr_http_requests_total",
                frozenset({("route", r), ("method", "POST"), ("status", "200")}),
            )
            for r in routes
        ]
        return sum(after[worker].get(k, 0) - before.get(worker, {}).get(k, 0) for k in keys)

    for worker in after:
        assert served(worker, CALL_ROUTES) > 0, worker
        assert served(worker, FEEDBACK_ROUTES) > 0, worker

    # Every card shown once, every outcome counted once (issued cards reach the database
    # within a second of being shown).
    expected = {
        "overview": (30, 0, 10),
        "spine-surgeon-assessment": (30, 30, 0),
        "safety": (20, 0, 20),
    }
    deadline = time.monotonic() + 15
    while True:
        rows = _report(two_workers.data_dir)
        counts = {t: (r["shown"], r["accepted"], r["overridden"]) for t, r in rows.items()}
        if counts == expected or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert counts == expected
    safety_reasons = rows["safety"]["override_reasons"]
    assert [(r["code"], r["count"]) for r in safety_reasons] == [
        (cards["safety"][0]["overrideReasons"][0]["code"], 20)
    ]
    # A second outcome for a card already answered is not counted again.
    again = _many_connections([("POST", feedback_url, _feedback(cards["safety"][0], "overridden"))])
    assert again[0].status_code < 500, again[0].text
    assert _report(two_workers.data_dir)["safety"]["overridden"] == 20


def test_a_worker_file_being_created_does_not_break_the_scrape(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prometheus-client creates a worker's file empty and then sizes it: a scrape in that
    moment must count it as zero, not fail (seen in CI as a struct.error)."""
    from nkr._metrics import MULTIPROC_ENV, exposition

    folder = tmp_path / MULTIPROC_FOLDER
    folder.mkdir()
    (folder / "counter_4242.db").touch()
    monkeypatch.setenv(MULTIPROC_ENV, str(folder))
    assert exposition() == b""
