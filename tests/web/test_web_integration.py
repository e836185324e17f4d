"""The integrators' page: discovery, sample requests, and cards rendered as an EHR shows them,
with the card markdown made safe."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from nkr._package import registry
from nkr._settings import Settings
from nkr.web import _cds, create_router

HOOKS = {
    "nkr-lumbal-radikulopati-patient-view": "patient-view",
    "nkr-lumbal-radikulopati-order-select": "order-select",
    "nkr-lumbal-radikulopati-order-sign": "order-sign",
}
HOSTILE_CARD: dict[str, Any] = {
    "uuid": "c1",
    "summary": "<script>alert('summary')</script> ↑ ⊕⊕",
    "indicator": "critical",
    "detail": "**Bold** and <script>alert('detail')</script>\n\n- item\n\n"
    "[bad](javascript:alert(1)) [good](https://example.org/x)",
    "source": {
        "label": "Sundhedsstyrelsen <b>NKR</b>",
        "url": "javascript:alert(2)",
        "topic": {"code": "mri"},
    },
    "suggestions": [
        {
            "label": "Delete the order",
            "uuid": "s1",
            "isRecommended": True,
            "actions": [{"type": "delete", "description": "Remove <i>draft</i>"}],
        }
    ],
    "selectionBehavior": "at-most-one",
    "overrideReasons": [{"code": "x", "display": "Patient wishes"}],
    "links": [
        {"label": "Recommendation", "url": "/anbefalinger/mri", "type": "absolute"},
        {"label": "Evil", "url": "javascript:alert(3)", "type": "absolute"},
    ],
}


def _fake_app(received: list[dict[str, Any]]) -> FastAPI:
    """The web router beside a stand-in CDS Hooks service."""
    app = FastAPI()
    fake = APIRouter()

    @fake.get("/cds-services")
    def discovery() -> dict[str, Any]:
        return {
            "services": [
                {"id": sid, "hook": hook, "title": f"Title {sid}", "prefetch": {"patient": "x"}}
                for sid, hook in HOOKS.items()
            ]
        }

    @fake.post("/cds-services/{service_id}")
    def call(service_id: str, body: dict[str, Any]) -> dict[str, Any]:
        received.append(body)
        return {"cards": [HOSTILE_CARD]}

    app.include_router(fake)
    app.include_router(create_router(Settings()))
    return app


def _post(app: FastAPI, path: str, data: dict[str, str]) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return await client.post(path, data=data)

    # Its own thread: the browser tests' Playwright may hold this thread's event loop.
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()


def test_cards_are_rendered_safely() -> None:
    received: list[dict[str, Any]] = []
    response = _post(
        _fake_app(received),
        "/integration",
        {"service": "nkr-lumbal-radikulopati-order-sign", "sample": "3-mri-order"},
    )
    assert response.status_code == 200
    html = response.text
    assert "<script>alert" not in html
    assert "&lt;script&gt;alert(&#39;summary&#39;)&lt;/script&gt;" in html
    assert "<strong>Bold</strong>" in html
    assert "<li>item</li>" in html
    assert "javascript:" not in html.replace("javascript:alert(1)", "").replace(
        "javascript:alert(2)", ""
    ).replace("javascript:alert(3)", "")
    assert 'href="javascript' not in html
    assert '<a href="https://example.org/x">good</a>' in html
    assert 'class="cds-card cds-critical"' in html
    assert "Sundhedsstyrelsen &lt;b&gt;NKR&lt;/b&gt;" in html
    assert '<a href="/anbefalinger/mri" rel="noopener noreferrer">Recommendation</a>' in html
    assert "Patient wishes" in html
    assert "Remove &lt;i&gt;draft&lt;/i&gt;" in html
    # The request the EHR would have sent.
    (request,) = received
    assert request["hook"] == "order-sign"
    assert request["context"]["draftOrders"]["resourceType"] == "Bundle"
    assert set(request["prefetch"]) == {
        "patient",
        "conditions",
        "observations",
        "procedures",
        "serviceRequests",
    }


def test_partial_result_for_the_script() -> None:
    response = _post(
        _fake_app([]),
        "/integration",
        {
            "service": "nkr-lumbal-radikulopati-patient-view",
            "sample": "1-in-scope",
            "partial": "1",
        },
    )
    assert response.text.lstrip().startswith('<section class="hook-result"')
    assert "content-security-policy" in response.headers


def test_unknown_service_or_sample_is_a_400() -> None:
    response = _post(_fake_app([]), "/integration", {"service": "nope", "sample": "1-in-scope"})
    assert response.status_code == 400
    assert 'id="result"' not in response.text


@pytest.mark.parametrize("hook", sorted(set(HOOKS.values())))
def test_sample_requests_have_the_cds_hooks_shape(hook: str) -> None:
    today = dt.date(2026, 11, 26)
    for sample in registry().default.samples.values():
        request = _cds.hook_request(sample, hook, today)
        assert request["hook"] == hook
        assert re.fullmatch(r"[0-9a-f-]{36}", request["hookInstance"])
        assert request["context"]["patientId"] == request["prefetch"]["patient"]["id"]
        if hook == "order-select":
            assert isinstance(request["context"]["selections"], list)
        if hook != "patient-view":
            assert request["context"]["draftOrders"]["type"] == "searchset"
        # Relative dates are resolved: nothing like ${today-20d} is left.
        assert "${" not in str(request)


def test_samples_load_and_dates_stay_recent() -> None:
    samples = registry().default.samples
    assert len(samples) >= 4
    request = _cds.hook_request(samples["1-in-scope"], "patient-view", dt.date(2026, 11, 26))
    condition = request["prefetch"]["conditions"]["entry"][0]["resource"]
    assert condition["onsetDateTime"] == "2026-11-06"


def test_the_real_server_page(server: str) -> None:
    """Against the app's own CDS Hooks service when it is there; a clear notice when not."""
    page = httpx.get(f"{server}/integration", timeout=10).text
    discovery = httpx.get(f"{server}/cds-services", timeout=10)
    if discovery.status_code != 200:
        assert 'id="no-services"' in page
        return
    for service_id, hook in HOOKS.items():
        assert f'id="service-{service_id}"' in page
        for sample_id in registry().default.samples:
            response = httpx.post(
                f"{server}/integration",
                data={"service": service_id, "sample": sample_id, "partial": "1"},
                timeout=10,
            )
            assert response.status_code == 200
            assert "HTTP-status 200" in response.text, (service_id, sample_id, hook)
            # Links in the cards point at this server, where the user can follow them.
            assert "nkr.internal" not in response.text
