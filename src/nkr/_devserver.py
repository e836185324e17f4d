"""A real ``nkr serve`` in a child process on a free loopback port, for tests and benchmarks."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_server(
    env_overrides: dict[str, str],
    data_dir: Path,
    *,
    timeout: float = 30.0,
    args: Sequence[str] = (),
    port: int | None = None,
    log_path: Path | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the server with a clean ``NKR_*`` environment plus ``env_overrides`` (and extra
    ``nkr serve`` arguments, e.g. ``--workers 2``); return the process and its base URL once
    it answers. ``port``: a port chosen beforehand (for a setting that names the server's own
    URL, such as ``NKR_PUBLIC_BASE_URL``); default a free one. ``log_path``: where the
    server's output goes (appended); default ``server.log`` in ``data_dir``."""
    port = port or free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("NKR_")}
    env["NKR_DATA_DIR"] = str(data_dir)
    env.update(env_overrides)
    # The server's log goes to a file: a pipe nobody reads would block it once full.
    log_path = log_path or data_dir / "server.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "nkr", "serve", "--port", str(port), *args],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            log_text = log_path.read_text(encoding="utf-8", errors="replace")
            raise RuntimeError(f"nkr serve exited with {proc.returncode}: {log_text}")
        try:
            httpx.get(f"{base}/cds-services", timeout=1)
            return proc, base
        except httpx.TransportError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError(f"nkr serve did not start within {timeout:.0f} s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
