"""Fixtures for the CDS Hooks tests: real servers, a CDS client, loopback helper servers."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from nkr._devserver import start_server

from ..conftest import AppFactory
from ..conftest import ServerFactory as ServerFactory  # re-exported for the tests here
from .cds_schema import check_response
from .fhir_data import EXTRA_RED_FLAGS, SERVICE_IDS


class Cds:
    """A CDS Hooks client of one server: a real one at ``base``, or the app in-process
    (:meth:`of` an in-process client)."""

    def __init__(self, base: str, client: httpx.Client | None = None) -> None:
        self.base = base
        self.client = client or httpx.Client(base_url=base, timeout=10)

    @classmethod
    def of(cls, client: httpx.Client) -> Cds:
        return cls(str(client.base_url).rstrip("/"), client)

    def url(self, hook: str) -> str:
        return f"{self.base}/cds-services/{SERVICE_IDS[hook]}"

    def post(
        self, hook: str, body: dict[str, Any] | bytes, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        return self.client.post(
            f"/cds-services/{SERVICE_IDS[hook]}",
            content=content,
            headers={"Content-Type": "application/json", **(headers or {})},
        )

    def cards(
        self, hook: str, body: dict[str, Any], headers: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        """The cards of a successful call, checked against the CDS Hooks 2.0 response shape."""
        response = self.post(hook, body, headers)
        assert response.status_code == 200, response.text
        return check_response(response.json())


@pytest.fixture(scope="session")
def valueset_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deployment's extra value sets: local codes for the red flags without shipped codes."""
    folder = tmp_path_factory.mktemp("valuesets")
    (folder / "red-flags-local.json").write_bytes(orjson.dumps(EXTRA_RED_FLAGS))
    return folder


@pytest.fixture(scope="session")
def cds(app_factory: AppFactory, valueset_dir: Path) -> Cds:
    """The app in-process on the defaults (auth off) plus the test deployment's extra value
    sets."""
    return Cds.of(app_factory({"NKR_VALUESET_DIR": str(valueset_dir)}))


# -- loopback helper servers ----------------------------------------------------------------

Handler = Callable[[BaseHTTPRequestHandler], tuple[int, bytes]]


@dataclass
class Loopback:
    """A tiny HTTP server on 127.0.0.1 answering GET requests with ``handler``."""

    handler: Handler
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)
    server: ThreadingHTTPServer = field(init=False)

    def __post_init__(self) -> None:
        outer = self

        class _Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append((self.path, dict(self.headers)))
                status, body = outer.handler(self)
                self.send_response(status)
                self.send_header("Content-Type", "application/fhir+json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def loopback() -> Iterator[Callable[[Handler], Loopback]]:
    started: list[Loopback] = []

    def start(handler: Handler) -> Loopback:
        server = Loopback(handler)
        started.append(server)
        return server

    yield start
    for server in started:
        server.close()


# -- a server process the test controls (kill and restart) ----------------------------------


@dataclass
class ServerProcess:
    data_dir: Path
    env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None
    base: str = ""
    # Where the server's log (stderr) goes; None: discarded.
    log_path: Path | None = None

    def start(self) -> str:
        log = self.log_path or self.data_dir / "server.log"
        self.proc, self.base = start_server(self.env, self.data_dir, log_path=log)
        return self.base

    def kill(self) -> None:
        """SIGKILL: no shutdown handler runs, so only what was committed survives."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def server_process(tmp_path: Path) -> Iterator[ServerProcess]:
    process = ServerProcess(tmp_path / "data")
    yield process
    process.kill()
