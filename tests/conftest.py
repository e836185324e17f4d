"""Shared fixtures: the app in-process (most tests), and a real ``nkr serve`` on a free
loopback port for the tests whose subject is the server process itself (uvicorn's parser and
proxy headers, two workers, kill and restart, the browser, schemathesis)."""

from __future__ import annotations

import subprocess
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

with warnings.catch_warnings():
    # Starlette asks for httpx2 on import; its test client works with httpx as it is.
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

from nkr._app import create_app
from nkr._devserver import start_server, stop_server
from nkr._package import discover
from nkr._settings import Settings

ServerFactory = Callable[[dict[str, str]], str]
AppFactory = Callable[[dict[str, str]], TestClient]

# The address in-process clients call the app at: an allowed host, as a real server's is.
IN_PROCESS_BASE = "http://127.0.0.1:8000"


@contextmanager
def in_process(
    env: Mapping[str, str], data_dir: Path, base_url: str = IN_PROCESS_BASE
) -> Iterator[TestClient]:
    """The app ``nkr serve`` runs, built from ``env`` (``NKR_*``, as the server reads them) on
    ``data_dir``, called in this process; its lifespan runs from entry to exit (leaving it is
    a graceful shutdown). As with an ``httpx.Client`` of a real server: server errors are 500
    answers, and redirects are not followed."""
    env = {"NKR_DATA_DIR": str(data_dir), **env}
    app = create_app(Settings.from_env(dict(env)), discover(env))
    with TestClient(
        app, base_url=base_url, raise_server_exceptions=False, follow_redirects=False
    ) as client:
        yield client


@pytest.fixture(scope="session")
def app_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AppFactory]:
    """An in-process client of the app with extra ``NKR_*`` settings, one per distinct
    settings for the session (each on a data folder of its own)."""
    clients: dict[tuple[tuple[str, str], ...], TestClient] = {}
    with ExitStack() as stack:

        def start(env: dict[str, str]) -> TestClient:
            key = tuple(sorted(env.items()))
            if key not in clients:
                data_dir = tmp_path_factory.mktemp("app")
                clients[key] = stack.enter_context(in_process(env, data_dir))
            return clients[key]

        yield start


@pytest.fixture(scope="session")
def app_client(app_factory: AppFactory) -> TestClient:
    """An in-process client of the app on the embedded defaults (auth off)."""
    return app_factory({})


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """A real server with extra ``NKR_*`` environment variables; returns its base URL. One
    server per distinct environment for the session."""
    procs: list[subprocess.Popen[bytes]] = []
    bases: dict[tuple[tuple[str, str], ...], str] = {}

    def start(env: dict[str, str]) -> str:
        key = tuple(sorted(env.items()))
        if key not in bases:
            proc, bases[key] = start_server(env, tmp_path_factory.mktemp("data"))
            procs.append(proc)
        return bases[key]

    yield start
    for proc in procs:
        stop_server(proc)


@pytest.fixture(scope="session")
def server(server_factory: ServerFactory) -> str:
    """Base URL of a real server on the embedded defaults (auth off)."""
    return server_factory({})
