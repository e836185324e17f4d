"""Browser fixtures for the web app's end-to-end tests: Debian's Chromium driven by Playwright.

A missing Chromium fails the tests (it never skips them): CI installs it with
``scripts/install-browser``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

CHROMIUM = Path(os.environ.get("NKR_TEST_CHROMIUM", "/usr/bin/chromium"))
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SCREENSHOTS = Path(__file__).resolve().parents[2] / "screenshots"


@pytest.fixture(scope="session")
def playwright_instance() -> Iterator[Playwright]:
    with sync_playwright() as pw:
        yield pw


@pytest.fixture(scope="session")
def browser(playwright_instance: Playwright) -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run scripts/install-browser")
    browser = playwright_instance.chromium.launch(
        executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
    )
    yield browser
    browser.close()


@dataclass
class Watch:
    """What a page did that it must not: console errors (CSP violations land there) and
    requests to any other origin."""

    base: str
    console_errors: list[str] = field(default_factory=list)
    foreign_requests: list[str] = field(default_factory=list)


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1280, "height": 900}, locale="da-DK")
    yield ctx
    ctx.close()


@pytest.fixture
def watch(server: str) -> Watch:
    return Watch(server)


@pytest.fixture
def page(context: BrowserContext, watch: Watch) -> Iterator[Page]:
    page = context.new_page()
    page.set_default_timeout(10_000)
    # A page's own 400 or 404 is deliberate; CSP violations and failed assets are not.
    page.on(
        "console",
        lambda msg: (
            watch.console_errors.append(msg.text)
            if msg.type == "error" and not msg.text.startswith("Failed to load resource")
            else None
        ),
    )
    page.on(
        "response",
        lambda res: (
            watch.console_errors.append(f"{res.status} {res.url}")
            if res.status >= 400 and res.request.resource_type != "document"
            else None
        ),
    )
    page.on(
        "request",
        lambda req: (
            None
            if req.url.startswith(watch.base) or req.url.startswith("data:")
            else watch.foreign_requests.append(req.url)
        ),
    )
    yield page
    assert watch.console_errors == [], watch.console_errors
    assert watch.foreign_requests == [], watch.foreign_requests


def _shot(page: Page, name: str, *, full_page: bool = True) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=full_page)


def _assert_accessible(page: Page) -> None:
    from axe_playwright_python.sync_playwright import Axe  # type: ignore[import-untyped]

    results = Axe().run(page)
    violations: list[dict[str, Any]] = results.response["violations"]
    serious = [v for v in violations if v.get("impact") in ("serious", "critical")]
    report = [
        {"id": v["id"], "help": v["help"], "nodes": [n["target"] for n in v["nodes"]][:5]}
        for v in serious
    ]
    assert serious == [], json.dumps(report, indent=1)


Shot = Callable[..., None]
Check = Callable[[Page], None]


@pytest.fixture
def shot() -> Shot:
    """Write a screenshot for a person to look at (``screenshots/`` is git-ignored)."""
    return _shot


@pytest.fixture
def accessible() -> Check:
    """Assert axe-core finds no serious or critical violation on the page as it is now."""
    return _assert_accessible
