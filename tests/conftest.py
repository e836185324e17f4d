"""Shared fixtures: a real nkr server on a free loopback port, for tests that send real HTTP."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator

import pytest

from nkr._devserver import start_server, stop_server

ServerFactory = Callable[[dict[str, str]], str]


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Start a server with extra ``NKR_*`` environment variables; returns its base URL."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> str:
        proc, base = start_server(env, tmp_path_factory.mktemp("data"))
        procs.append(proc)
        return base

    yield start
    for proc in procs:
        stop_server(proc)


@pytest.fixture(scope="session")
def server(server_factory: ServerFactory) -> str:
    """Base URL of a server on the embedded defaults (auth off)."""
    return server_factory({})
