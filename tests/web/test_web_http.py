"""Plain HTTP to the app (in-process): headers, escaping, 404s, languages, server time."""

from __future__ import annotations

import datetime as dt
import re

import httpx
import pytest

import nkr
from nkr._clock import today
from nkr._render import grade_in_words
from nkr.guidelines.lumbar_radiculopathy import package

G = package().content
# The guideline's own addresses; the old ones (without it) keep working for the default one.
BASE = f"/{G.slug}"
# From the server's "today" (Copenhagen), not the machine's local date.
ONSET = (today() - dt.timedelta(days=20)).isoformat()
# A case for the result page: posted, never in a URL.
RESULT_FORM = {"age": "45", "symptom_onset": ONSET, "signs": "reflex_loss", "planned": "mri"}
RESULTS = {
    "/vurdering (posted)": RESULT_FORM,
    "/vurdering (posted, print, lang=en)": RESULT_FORM | {"print": "1", "lang": "en"},
}
PAGES = [
    "/",
    "/?lang=en",
    "/anbefalinger/physical-activity",
    "/anbefalinger/spine-surgeon-assessment?lang=en",
    "/vurdering",
    "/vurdering?lang=en",
    *RESULTS,
    "/pjece",
    "/pjece?lang=en",
    "/integration",
    f"{BASE}/",
    f"{BASE}/anbefalinger/mri?lang=en",
    f"{BASE}/vurdering",
    f"{BASE}/pjece?lang=en",
]


@pytest.fixture(scope="module")
def client(app_client: httpx.Client) -> httpx.Client:
    return app_client


def _page(client: httpx.Client, path: str) -> httpx.Response:
    """A page by GET, or a result page by POSTing its case."""
    if path in RESULTS:
        return client.post("/vurdering", data=RESULTS[path])
    return client.get(path)


@pytest.mark.parametrize("path", PAGES)
def test_page_headers_and_language(client: httpx.Client, path: str) -> None:
    response = _page(client, path)
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    csp = response.headers["content-security-policy"]
    assert "default-src 'self'" in csp
    assert "script-src 'self'" in csp
    assert "unsafe-inline" not in csp
    assert "frame-ancestors 'none'" in csp
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    lang = "en" if "lang=en" in path else "da"
    assert f'<html lang="{lang}">' in response.text
    # No inline script or style, nothing from another origin.
    assert re.search(r"<script(?![^>]*\bsrc=)", response.text) is None
    assert "<style" not in response.text
    assert " style=" not in response.text
    assert re.search(r'(src|href)="(https?:)?//(?!app\.magicapp\.org)', response.text) is None


def test_assessment_pages_are_not_cached(client: httpx.Client) -> None:
    assert client.get("/vurdering").headers["cache-control"] == "no-store"
    posted = client.post("/vurdering", data={"age": "45", "symptom_onset": ONSET})
    assert posted.headers["cache-control"] == "no-store"


def test_a_case_in_the_query_is_redirected_to_the_blank_form(client: httpx.Client) -> None:
    """Patient data stays out of URLs: a GET with case fields never gives a result."""
    response = client.get("/vurdering", params=RESULT_FORM | {"lang": "en"})
    assert response.status_code == 303
    assert response.headers["location"] == "/vurdering?lang=en"
    assert response.headers["cache-control"] == "no-store"
    assert ONSET not in response.text


def test_user_text_is_escaped(client: httpx.Client) -> None:
    attack = '"><script>alert(1)</script><img src=x onerror=alert(2)>'
    response = client.post(
        "/vurdering",
        data={"age": attack, "symptom_onset": attack, "assessment_date": attack, "lang": "en"},
    )
    assert response.status_code == 400
    assert "<script>alert(1)" not in response.text
    assert "<img src=x" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    # Kept in the form, escaped inside the attribute.
    assert 'value="&#34;&gt;&lt;script&gt;' in response.text
    unknown = client.get("/anbefalinger/%3Cimg%20src%3Dx%20onerror%3Dalert(1)%3E")
    assert unknown.status_code == 404
    assert "<img src=x" not in unknown.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in unknown.text


def test_unknown_recommendation_is_a_404_page(client: httpx.Client) -> None:
    for lang, title in (("da", "Siden findes ikke"), ("en", "Page not found")):
        response = client.get(f"/anbefalinger/no-such-id?lang={lang}")
        assert response.status_code == 404
        assert f'<html lang="{lang}">' in response.text
        assert title in response.text
        assert "content-security-policy" in response.headers
        for rec in G.recommendations:
            assert f'href="{BASE}/anbefalinger/{rec.id}' in response.text
    assert client.get("/static/no-such-file.css").status_code == 404


def test_every_recommendation_page_shows_grade_wording_and_status(client: httpx.Client) -> None:
    for rec in G.recommendations:
        for lang in nkr.LANGS:
            page = client.get(f"/anbefalinger/{rec.id}?lang={lang}").text
            assert rec.wording(lang) in page
            assert grade_in_words(G, rec.id, lang) in page
            assert G.status.text(lang) in page


def test_quick_guide_has_every_recommendation_in_order(client: httpx.Client) -> None:
    for lang in nkr.LANGS:
        page = client.get(f"/?lang={lang}").text
        positions = [page.index(f'id="h-{s.id}">{s.heading(lang)}<') for s in G.sections]
        assert positions == sorted(positions)
        rec_positions = [page.index(r.wording(lang)) for r in G.recommendations]
        assert rec_positions == sorted(rec_positions)
        for rec in G.recommendations:
            assert f'href="{BASE}/anbefalinger/{rec.id}' in page
        assert G.status.text(lang) in page
        assert G.version in page


def test_language_links_keep_the_page(client: httpx.Client) -> None:
    page = client.get("/anbefalinger/mri").text
    assert 'href="/anbefalinger/mri?lang=en"' in page
    assert 'href="/anbefalinger/mri"' in client.get("/anbefalinger/mri?lang=en").text
    assert f'href="{BASE}/anbefalinger/mri?lang=en"' in client.get(f"{BASE}/anbefalinger/mri").text
    assert '<html lang="da">' in client.get("/?lang=xx").text


def test_static_files_are_cacheable(client: httpx.Client) -> None:
    page = client.get("/").text
    match = re.search(r'href="(/static/style\.css\?v=[0-9a-f]+)"', page)
    assert match is not None
    css = client.get(match.group(1))
    assert css.status_code == 200
    assert css.headers["content-type"] == "text/css; charset=utf-8"
    again = client.get(match.group(1), headers={"If-None-Match": css.headers["etag"]})
    assert again.status_code == 304


def test_posted_form_errors_are_in_the_page_language(client: httpx.Client) -> None:
    cases = {
        "missing onset": ({"age": "45"}, "symptom_onset", "Angiv datoen for symptomdebut."),
        "impossible date": (
            {"age": "45", "symptom_onset": "2026-02-30"},
            "symptom_onset",
            "findes ikke",
        ),
        "future onset": (
            {"age": "45", "symptom_onset": (today() + dt.timedelta(days=1)).isoformat()},
            "symptom_onset",
            "kan ikke ligge efter vurderingsdatoen",
        ),
        "both": (
            {"age": "45", "birth_date": "1980-01-01", "symptom_onset": ONSET},
            "age_group",
            "ikke begge",
        ),
        "neither": ({"symptom_onset": ONSET}, "age_group", "Angiv fødselsdato eller alder."),
        "age too high": ({"age": "131", "symptom_onset": ONSET}, "age", "mellem 0 og 130"),
    }
    for name, (data, field, words) in cases.items():
        response = client.post("/vurdering", data=data)
        assert response.status_code == 400, name
        error = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', response.text)
        assert error is not None, name
        assert words in error.group(1), name


def test_every_page_reports_its_server_time(client: httpx.Client) -> None:
    """The Server-Timing header that benchmarks/bench_web.py reads (speed is measured there,
    and recorded in BENCHMARKS.md, not asserted here)."""
    for path in [*PAGES, "/anbefalinger/findes-ikke"]:
        response = _page(client, path)
        timing = re.fullmatch(r"app;dur=(\d+\.\d+)", response.headers["server-timing"])
        assert timing is not None, path


def test_an_address_without_a_page_gets_the_web_apps_404_page(client: httpx.Client) -> None:
    response = client.get("/findes/ikke?lang=en")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Content-Security-Policy" in response.headers
    assert '<html lang="en"' in response.text
    assert "There is no page at this address." in response.text


def test_api_routing_errors_are_operation_outcomes(client: httpx.Client) -> None:
    missing = client.get("/fhir/Patient/1")
    assert missing.status_code == 404
    assert missing.json()["resourceType"] == "OperationOutcome"
    wrong_method = client.delete("/cds-services")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "GET"
    assert wrong_method.json()["issue"][0]["code"] == "not-supported"
