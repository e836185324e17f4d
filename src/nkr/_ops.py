"""What operators run the service with: liveness, readiness, and Prometheus metrics.

- ``GET /healthz``: the process is up and answering (for a liveness probe); it checks nothing
  else, so that a slow disk never gets a healthy process restarted.
- ``GET /readyz``: the service can do its work (for a readiness probe): the guideline is
  loaded and the feedback database can take a write. 503 names what is not ready.
- ``GET /metrics``: Prometheus's text format, only when ``NKR_METRICS_TOKEN`` is set (404
  otherwise) and only with that token as bearer token (401 otherwise).

None of them needs the EHR's JWT, none is in the OpenAPI document of the CDS Hooks service, and
none says anything about a patient. :class:`Metrics` is the ASGI middleware that counts every
request by route template (never the path itself, which can carry ids).
"""

from __future__ import annotations

import asyncio
import hmac
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any, Final

import orjson
from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, Counter, Histogram
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nkr import _metrics
from nkr._package import registry
from nkr._settings import Settings
from nkr.cdshooks import DB_NAME
from nkr.cdshooks._feedback import INTERNAL_CALL
from nkr.fhir import outcome_response

# A readiness probe must answer within the orchestrator's timeout (Kubernetes: 1 s by
# default): a database whose write lock cannot be had within this is reported as not ready.
DATABASE_WAIT_SECONDS: Final = 0.5
# How long one readiness check's result is the answer (probes come every few seconds).
READY_CACHE_SECONDS: Final = 1.0
# Below this much free space in the data folder, feedback may fail to be stored.
MIN_FREE_BYTES: Final = 1_000_000
# The label of requests that reached no route (an unknown address, or refused before routing,
# such as 413 or 431): their paths are the caller's choice.
UNMATCHED: Final = "unmatched"
_METHODS: Final = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
# The routes of service calls: one per service, and a templated one for any other id.
_CDS_CALL: Final = "/cds-services/{service_id}"


def _json(data: Any, status_code: int = 200) -> Response:
    return Response(
        orjson.dumps(data),
        status_code=status_code,
        media_type="application/json",
        headers={"Cache-Control": "no-store"},
    )


def check_guideline() -> str:
    """``ok`` when every installed guideline is loaded with its recommendations, its texts
    and its value sets."""
    try:
        for package in registry().packages:
            if not package.content.recommendations:
                return f"not loaded ({package.id}: no recommendations)"
            package.texts  # noqa: B018 - loaded (and checked) now
            package.valuesets  # noqa: B018
    except Exception as exc:  # any failure to load one means "not ready"
        return f"not loaded ({type(exc).__name__})"
    return "ok"


def check_database(path: Path) -> str:
    """``ok`` when the feedback database can take a write now: its write lock is taken and
    let go again (``BEGIN IMMEDIATE; ROLLBACK``, which writes nothing), on a connection of
    its own that never creates the file; and the data folder has room left."""
    try:
        conn = sqlite3.connect(
            f"{path.resolve().as_uri()}?mode=rw",
            uri=True,
            timeout=DATABASE_WAIT_SECONDS,
            isolation_level=None,
        )
    except sqlite3.Error as exc:
        return f"cannot open the database ({exc})"
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        return f"the database cannot take a write ({exc})"
    finally:
        conn.close()
    try:
        free = shutil.disk_usage(path.parent).free
    except OSError as exc:
        return f"cannot see the data folder's free space ({exc.strerror})"
    if free < MIN_FREE_BYTES:
        return f"the data folder's disk is full ({free} bytes free)"
    return "ok"


class _Readiness:
    """The checks of ``/readyz``, run at most once per ``READY_CACHE_SECONDS`` and one at a
    time per worker: anyone may call ``/readyz``, and a flood of calls must not take the
    database's write lock from feedback, nor fill the thread pool while the lock is held."""

    def __init__(self, database: Path) -> None:
        self.database = database
        self.last: dict[str, str] | None = None
        self.checked_at = -READY_CACHE_SECONDS
        self.running = False

    async def checks(self) -> dict[str, str]:
        fresh = time.monotonic() - self.checked_at < READY_CACHE_SECONDS
        if self.running and self.last is None:
            return {"guideline": check_guideline(), "database": "being checked"}
        if self.last is not None and (fresh or self.running):
            return self.last
        self.running = True
        try:
            checks = {
                "guideline": check_guideline(),
                # sqlite3 blocks while it waits for the lock: not on the event loop.
                "database": await asyncio.to_thread(check_database, self.database),
            }
        finally:
            self.running = False
        self.last, self.checked_at = checks, time.monotonic()
        return checks


def _unauthorized() -> Response:
    response = outcome_response(401, "login", "/metrics needs the bearer token NKR_METRICS_TOKEN")
    response.headers["WWW-Authenticate"] = 'Bearer realm="metrics"'
    return response


def create_router(settings: Settings) -> APIRouter:
    """``/healthz``, ``/readyz`` and, when ``NKR_METRICS_TOKEN`` is set, ``/metrics``."""
    router = APIRouter(include_in_schema=False)
    database = settings.data_dir / DB_NAME

    @router.api_route("/healthz", methods=["GET", "HEAD"])
    async def healthz() -> Response:
        return _json({"status": "ok"})

    readiness = _Readiness(database)

    @router.api_route("/readyz", methods=["GET", "HEAD"])
    async def readyz() -> Response:
        checks = await readiness.checks()
        ready = all(v == "ok" for v in checks.values())
        return _json(
            {"status": "ok" if ready else "not ready", "checks": checks}, 200 if ready else 503
        )

    if settings.metrics_token:
        expected = f"Bearer {settings.metrics_token}".encode()

        @router.get("/metrics")
        async def metrics(request: Request) -> Response:
            given = (request.headers.get("authorization") or "").encode()
            # In constant time: how much of the token a caller got right must not show.
            if not hmac.compare_digest(given, expected):
                return _unauthorized()
            # Reading every worker's file is disk work: not on the event loop.
            body = await asyncio.to_thread(_metrics.exposition)
            return Response(
                body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"}
            )

    return router


class Metrics:
    """Counts every HTTP request and its duration by route template, method and status, and
    CDS Hooks service calls by service and status (pure ASGI, so it costs a few microseconds).

    The route template is what the router matched (``/cds-services/{service_id}``); a request
    that matched none is counted as ``unmatched``, an unknown service id as ``unknown`` and an
    uncommon method as ``other``: a caller cannot make up label values. The integrators page's
    in-process calls of the services are not counted: they are not EHR traffic."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        # The services of the installed guidelines, by the route of their calls.
        self._services = frozenset(s.id for p in registry().packages for s in p.services)
        self._routes = {f"/cds-services/{s}": s for s in self._services}
        # The labelled children, by label values: labels() costs more than the counting.
        self._children: dict[tuple[str, str, int], tuple[tuple[Counter, Histogram], ...]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The integrators page's own in-process calls are not traffic to count.
        if scope["type"] != "http" or scope.get(INTERNAL_CALL):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_status)
        finally:
            self._count(scope, status, time.perf_counter() - started)

    def _count(self, scope: Scope, status: int, seconds: float) -> None:
        route = getattr(scope.get("route"), "path", None)
        template = route if isinstance(route, str) else UNMATCHED
        method = scope["method"] if scope["method"] in _METHODS else "other"
        service = None
        if method == "POST":
            service = self._routes.get(template)
            if service is None and template == _CDS_CALL:
                given = scope.get("path_params", {}).get("service_id")
                service = given if given in self._services else "unknown"
        key = (template if service is None else f"{template}|{service}", method, status)
        children = self._children.get(key)
        if children is None:
            children = (
                (
                    _metrics.REQUESTS.labels(template, method, str(status)),
                    _metrics.REQUEST_SECONDS.labels(template),
                ),
            )
            if service is not None:
                children += (
                    (
                        _metrics.CDS_CALLS.labels(service, str(status)),
                        _metrics.CDS_CALL_SECONDS.labels(service),
                    ),
                )
            self._children[key] = children
        for counter, histogram in children:
            counter.inc()
            histogram.observe(seconds)
