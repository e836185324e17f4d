"""Tests run their own event loops through tests._async.run_async (see its docstring): a plain
``asyncio.run`` fails on a pytest worker that ran a browser test before it."""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).parent


def test_no_test_calls_asyncio_run_directly() -> None:
    offenders = [
        str(path.relative_to(TESTS))
        for path in TESTS.rglob("*.py")
        if path.name != "_async.py"
        and path.name != Path(__file__).name
        and re.search(r"\basyncio\.run\(", path.read_text(encoding="utf-8"))
    ]
    assert offenders == []
