"""HL7's CDS Hooks Sandbox, the reference CDS Hooks client, against the real ``nkr serve``.

Three servers on 127.0.0.1: the prebuilt sandbox (``../shared/tools/cds-hooks-sandbox``, next to
the repository, as in CI), the project's own small FHIR test server holding the web app's
sample patients (``tests/fhir_test_server.py``), and nkr with JWT verification on, trusting the
sandbox's published public key from its file (the sandbox also sends a ``jku``, which nkr must
not fetch), CORS for the sandbox's origin, fetching allowed from the test FHIR server only, and
the sandbox's CPT code for a lumbar MRI added as a test deployment's local code
(``sandbox_valuesets/``). Headless Chromium runs the sandbox as a clinician would: it loads a
patient, shows nkr's cards, takes a suggestion, dismisses a card with a reason, and orders an
MRI on the PAMA tab; the feedback it posts must land in nkr's database.

Playwright's sync API allows one instance per thread, and the web app's browser tests keep
theirs for the whole session: this module drives its own Chromium from a thread of its own.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx
import orjson
import pytest
from playwright.sync_api import Browser, Page, Playwright, Request, Response, sync_playwright
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from starlette.applications import Starlette
from starlette.routing import Mount
from starlette.staticfiles import StaticFiles

from nkr._app import create_app as create_nkr_app
from nkr._devserver import free_port, start_server, stop_server
from nkr._package import Registry
from nkr._settings import Settings
from nkr.cdshooks import DB_NAME, TopicReport, report
from nkr.guidelines.lumbar_radiculopathy import LumbarRadiculopathy, Options
from nkr.web._cds import hook_request
from tests.fhir_test_server import create_app as create_fhir_app
from tests.fhir_test_server import serving
from tests.web.conftest import CHROMIUM, CHROMIUM_ARGS

from .fhir_data import SERVICE_IDS

REPO = Path(__file__).resolve().parents[2]
SANDBOX = REPO.parent / "shared" / "tools" / "cds-hooks-sandbox"
SANDBOX_JWKS = SANDBOX / ".well-known" / "jwks.json"
SANDBOX_ISSUER = "https://sandbox.cds-hooks.org"
VALUESETS = Path(__file__).with_name("sandbox_valuesets")
# The sandbox's PAMA order for a lumbar MRI (CPT 72148), as its order search lists it.
LUMBAR_MRI = (
    "Magnetic resonance (eg, proton) imaging, spinal canal and contents, lumbar; "
    "without contrast material"
)
# Waits are generous: the sandbox's 5 MB bundle takes seconds to start on a busy CI machine.
TIMEOUT_MS = 30_000

T = TypeVar("T")


@dataclass
class Stack:
    """The three servers' base URLs, and nkr's data folder."""

    sandbox: str
    fhir: str
    nkr: str
    data_dir: Path


@dataclass
class NkrTraffic:
    """The sandbox's calls to nkr as the browser saw them."""

    calls: list[tuple[str, str, int]] = field(default_factory=list)
    refused: list[Response] = field(default_factory=list)

    def describe(self) -> str:
        """The calls, and what nkr said to those it refused (the sandbox shows no error)."""
        said = [f"{r.status} {urlsplit(r.url).path}: {r.text()[:300]}" for r in self.refused]
        return f"calls {self.calls}; refused: {said}"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    if not SANDBOX_JWKS.is_file():
        pytest.fail(
            f"the HL7 CDS Hooks Sandbox is not at {SANDBOX}: this test needs the prebuilt "
            "sandbox in ../shared/tools/cds-hooks-sandbox next to the repository (as in CI)"
        )
    today = Settings.from_env({}).today()
    static = Starlette(routes=[Mount("/", StaticFiles(directory=SANDBOX, html=True))])
    with serving(static) as sandbox, serving(create_fhir_app(today, [sandbox])) as fhir:
        data_dir = tmp_path_factory.mktemp("sandbox-nkr")
        port = free_port()
        env = {
            "NKR_JWT_ISSUERS": f"{SANDBOX_ISSUER}={SANDBOX_JWKS}",
            # The sandbox signs aud as the service URL it calls, under its discovery URL.
            "NKR_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
            "NKR_CORS_ORIGINS": sandbox,
            "NKR_FHIR_SERVERS": fhir,
            "NKR_VALUESET_DIR": str(VALUESETS),
        }
        proc, nkr = start_server(env, data_dir, port=port)
        try:
            yield Stack(sandbox, fhir, nkr, data_dir)
        finally:
            stop_server(proc)


@pytest.fixture(scope="module")
def in_browser() -> Iterator[Callable[[Callable[[Browser], T]], T]]:
    """Run a function with the module's Chromium, in the one thread that owns it."""
    if not CHROMIUM.exists():
        pytest.fail(f"Chromium not found at {CHROMIUM}: run scripts/install-browser")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sandbox-browser") as thread:
        handles: dict[str, Any] = {}

        def launch() -> None:
            pw: Playwright = sync_playwright().start()
            handles["pw"] = pw
            handles["browser"] = pw.chromium.launch(
                executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
            )

        def close() -> None:
            handles["browser"].close()
            handles["pw"].stop()

        thread.submit(launch).result()

        def run(fn: Callable[[Browser], T]) -> T:
            return thread.submit(fn, handles["browser"]).result()

        try:
            yield run
        finally:
            thread.submit(close).result()


@pytest.fixture(scope="module")
def expected(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str, str], list[Any]]:
    """nkr's own cards (in Danish) for a sample patient on a hook, from the app in-process."""
    # The same local codes as the real server below gets from NKR_VALUESET_DIR.
    package = LumbarRadiculopathy(Options(valueset_dir=VALUESETS))
    settings = Settings(data_dir=tmp_path_factory.mktemp("expected"))
    app = create_nkr_app(settings, Registry((package,), package.id))

    async def call(hook: str, body: dict[str, Any]) -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            return await client.post(
                f"/cds-services/{SERVICE_IDS[hook]}",
                content=orjson.dumps(body),
                headers={"Content-Type": "application/json", "Accept-Language": "da"},
            )

    def cards(patient_id: str, hook: str) -> list[Any]:
        sample = next(s for s in package.samples.values() if s.patient["id"] == patient_id)
        # In a thread of its own: the browser tests' Playwright may hold this thread's loop.
        with ThreadPoolExecutor(max_workers=1) as thread:
            request = hook_request(sample, hook, settings.today())
            response = thread.submit(asyncio.run, call(hook, request)).result()
        assert response.status_code == 200, response.text
        result: list[Any] = response.json()["cards"]
        return result

    return cards


def _open(browser: Browser, stack: Stack, patient_id: str) -> tuple[Page, NkrTraffic]:
    """The sandbox on ``patient_id``, offline (any address but 127.0.0.1 is refused: it also
    asks its default discovery URL on the internet), recording its calls to nkr."""
    context = browser.new_context(locale="da-DK", viewport={"width": 1400, "height": 1000})
    context.route(re.compile(r"^https?://(?!127\.0\.0\.1[:/])"), lambda route: route.abort())
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    traffic = NkrTraffic()

    def seen(response: Response) -> None:
        request: Request = response.request
        if response.url.startswith(stack.nkr) and request.method != "OPTIONS":
            path = response.url.removeprefix(stack.nkr).split("?")[0]
            traffic.calls.append((request.method, path, response.status))
            if response.status >= 400:
                traffic.refused.append(response)

    page.on("response", seen)
    page.goto(
        f"{stack.sandbox}/?fhirServiceUrl={stack.fhir}&patientId={patient_id}"
        f"&serviceDiscoveryURL={stack.nkr}/cds-services"
    )
    return page, traffic


def _shown_cards(page: Page, traffic: NkrTraffic, count: int) -> list[tuple[str, str]]:
    """(indicator, summary) of the cards the sandbox shows, once there are ``count``."""
    cards = page.locator('[class*="card-list__decision-card"]')
    try:
        cards.nth(count - 1).wait_for()
    except PlaywrightTimeout:
        raise AssertionError(
            f"the sandbox shows {cards.count()} cards, not {count}; {traffic.describe()}"
        ) from None
    time.sleep(0.3)  # no card after the last one expected
    shown = []
    for i in range(cards.count()):
        card = cards.nth(i)
        found = re.search(r"card-list__alert-([a-z]+)", card.get_attribute("class") or "")
        summary = card.locator("p").first.inner_text().strip()
        shown.append((found[1] if found else "?", summary))
    return shown


def _card_on_screen(page: Page, summary: str) -> Any:
    return page.locator('[class*="card-list__decision-card"]').filter(
        has=page.get_by_text(summary, exact=True)
    )


def _topic(card: dict[str, Any]) -> str:
    code: str = card["source"]["topic"]["code"]
    return code


def _wait_for_report(data_dir: Path, done: Callable[[dict[str | None, TopicReport]], bool]) -> Any:
    """The feedback report once ``done`` holds (issued cards reach the database within about
    a second of being shown), or the last one read."""
    deadline = time.monotonic() + 10
    while True:
        rows = {r.topic: r for r in report(data_dir / DB_NAME)}
        if done(rows) or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_sandbox_calls_need_the_jwt(stack: Stack) -> None:
    """JWT verification is on: what the sandbox is shown below passed it."""
    response = httpx.post(
        f"{stack.nkr}/cds-services/{SERVICE_IDS['patient-view']}",
        content=b'{"hook": "patient-view"}',
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 401, response.text


def test_sandbox_shows_the_patient_view_cards_and_its_feedback_is_stored(
    stack: Stack,
    in_browser: Callable[[Callable[[Browser], Any]], Any],
    expected: Callable[[str, str], list[Any]],
) -> None:
    surgeon_due = expected("sample-bent", "patient-view")
    red_flag = expected("sample-dan", "patient-view")
    assert sorted(_topic(c) for c in surgeon_due) == ["overview", "spine-surgeon-assessment"]
    assert [(_topic(c), c["indicator"]) for c in red_flag] == [("safety", "critical")]
    referral = next(c for c in surgeon_due if _topic(c) == "spine-surgeon-assessment")
    safety = red_flag[0]
    reason = safety["overrideReasons"][0]

    def clinician(browser: Browser) -> list[tuple[str, str, int]]:
        calls: list[tuple[str, str, int]] = []
        # In scope, severe pain despite exercise: the overview and the spine surgeon due.
        page, traffic = _open(browser, stack, "sample-bent")
        shown = _shown_cards(page, traffic, len(surgeon_due))
        assert sorted(shown) == sorted((c["indicator"], c["summary"]) for c in surgeon_due)
        # Taking the referral suggestion: "accepted" feedback.
        card = _card_on_screen(page, referral["summary"])
        with page.expect_response(
            lambda r: r.url.endswith("/feedback") and r.request.method == "POST"
        ) as accepted:
            card.get_by_role("button", name=referral["suggestions"][0]["label"]).click()
        assert accepted.value.status == 200, accepted.value.text()
        calls += traffic.calls
        page.context.close()

        # Cauda equina symptoms: the critical safety card only; dismissed with a reason.
        page, traffic = _open(browser, stack, "sample-dan")
        assert _shown_cards(page, traffic, 1) == [("critical", safety["summary"])]
        page.get_by_label("select dismiss reason").click()
        with page.expect_response(
            lambda r: r.url.endswith("/feedback") and r.request.method == "POST"
        ) as overridden:
            page.get_by_text(f"Override: {reason['display']}", exact=True).click()
        assert overridden.value.status == 200, overridden.value.text()
        calls += traffic.calls
        page.context.close()
        return calls

    calls = in_browser(clinician)
    assert [c for c in calls if c[2] >= 400] == []
    assert ("POST", f"/cds-services/{SERVICE_IDS['patient-view']}", 200) in calls

    rows = _wait_for_report(
        stack.data_dir,
        lambda r: "safety" in r and r["safety"].overridden >= 1 and r["safety"].shown >= 1,
    )
    assert rows["spine-surgeon-assessment"].accepted == 1
    assert rows["spine-surgeon-assessment"].shown >= 1
    assert rows["safety"].overridden == 1
    assert rows["safety"].shown >= 1
    assert [code for code, _, _ in rows["safety"].reasons] == [reason["code"]]
    assert rows["overview"].shown >= 1
    assert None not in rows  # every piece of feedback was on a card nkr issued


def test_sandbox_pama_lumbar_mri_order_gets_the_mri_caution(
    stack: Stack,
    in_browser: Callable[[Callable[[Browser], Any]], Any],
    expected: Callable[[str, str], list[Any]],
) -> None:
    mri = [c for c in expected("sample-clara", "order-select") if _topic(c) == "mri"]
    assert len(mri) == 1

    def clinician(browser: Browser) -> tuple[list[tuple[str, str]], list[tuple[str, str, int]]]:
        page, traffic = _open(browser, stack, "sample-clara")
        _shown_cards(page, traffic, 1)  # the patient-view card first
        page.get_by_role("button", name="PAMA Imaging").click()
        # The tab opens with an empty order (coding [{}]): no card, and no error.
        page.get_by_text("Search orders").wait_for()
        page.locator("input").first.fill("spinal canal and contents, lumbar")
        page.get_by_text(LUMBAR_MRI, exact=True).click()
        shown = _shown_cards(page, traffic, 1)
        calls = traffic.calls
        page.context.close()
        return shown, calls

    shown, calls = in_browser(clinician)
    assert shown == [("warning", mri[0]["summary"])]
    assert [c for c in calls if c[2] >= 400] == []
    assert ("POST", f"/cds-services/{SERVICE_IDS['order-select']}", 200) in calls
