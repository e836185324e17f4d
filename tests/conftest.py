"""Shared fixtures: a real nkr server on a free loopback port, for tests that send real HTTP."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

ServerFactory = Callable[[dict[str, str]], str]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _start(env_overrides: dict[str, str], data_dir: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NKR_")}
    env["NKR_DATA_DIR"] = str(data_dir)
    env.update(env_overrides)
    proc = subprocess.Popen(
        [sys.executable, "-m", "nkr", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read().decode() if proc.stderr else ""
            raise RuntimeError(f"nkr serve exited with {proc.returncode}: {err}")
        try:
            httpx.get(f"{base}/cds-services", timeout=1)
            return proc, base
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("nkr serve did not start within 30 s")


@pytest.fixture(scope="session")
def server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """Start a server with extra ``NKR_*`` environment variables; returns its base URL."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> str:
        proc, base = _start(env, tmp_path_factory.mktemp("data"))
        procs.append(proc)
        return base

    yield start
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def server(server_factory: ServerFactory) -> str:
    """Base URL of a server on the embedded defaults (auth off)."""
    return server_factory({})
