"""Running a test's own event loop.

Playwright's sync API (the browser tests' session-wide browser) leaves its event loop marked
as running in the main thread between its calls, and ``asyncio.run`` refuses to start where a
loop runs: on a pytest worker that ran a browser test first, every later ``asyncio.run``
failed. A test's coroutine therefore runs in a thread of its own when a loop is running here.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(coroutine)``, in a fresh thread if this one has a running loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-loop") as thread:
        return thread.submit(asyncio.run, coroutine).result()
