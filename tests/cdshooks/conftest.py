"""Fixtures for the CDS Hooks tests: real servers, a CDS client, loopback helper servers."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from nkr._devserver import free_port

from .cds_schema import check_response
from .fhir_data import EXTRA_RED_FLAGS, SERVICE_IDS

# The type of the shared ``server_factory`` fixture (tests/conftest.py).
ServerFactory = Callable[[dict[str, str]], str]


@dataclass
class Cds:
    """A CDS Hooks client of one server."""

    base: str
    client: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base, timeout=10)

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
def cds_base(server_factory: ServerFactory, valueset_dir: Path) -> str:
    """A server on the defaults (auth off) plus the test deployment's extra value sets."""
    return server_factory({"NKR_VALUESET_DIR": str(valueset_dir)})


@pytest.fixture(scope="session")
def cds(cds_base: str) -> Cds:
    return Cds(cds_base)


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
        port = free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("NKR_")}
        env.update({"NKR_DATA_DIR": str(self.data_dir), **self.env})
        log = subprocess.DEVNULL if self.log_path is None else self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "nkr", "serve", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=log,
        )
        self.base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nkr serve exited with {self.proc.returncode}")
            try:
                httpx.get(f"{self.base}/cds-services", timeout=1)
                return self.base
            except httpx.TransportError:
                time.sleep(0.05)
        self.kill()
        raise RuntimeError("nkr serve did not start within 30 s")

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
