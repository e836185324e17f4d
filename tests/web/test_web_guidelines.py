"""The web app is generic: every installed guideline has its pages under its slug, the old
addresses keep serving the default one, ``/`` lists the guidelines when there are several, and
an error a guideline raises lands at the field its location names."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from nkr import InputError, Localized
from nkr._assessment import Assessment
from nkr._guideline import Guideline
from nkr._package import Registry, ServiceSpec
from nkr._settings import Settings
from nkr.guidelines.lumbar_radiculopathy import LumbarRadiculopathy
from nkr.web import create_router
from nkr.web._form import CaseForm, assess
from nkr.web._spec import Sample
from tests.web._html import parse

WEB = Path(__file__).resolve().parents[2] / "src" / "nkr" / "web"
LR = LumbarRadiculopathy()
ON = dt.date(2026, 11, 26)


class Other(LumbarRadiculopathy):
    """A second installed guideline (the lumbar one under another id, slug and title, with no
    CDS services and one sample), enough to show what the app does with two."""

    @cached_property
    def content(self) -> Guideline:
        title = Localized(da="En anden retningslinje", en="Another guideline")
        return super().content.model_copy(
            update={"id": "test-other", "slug": "anden", "title": title, "short_title": title}
        )

    @cached_property
    def services(self) -> tuple[ServiceSpec, ...]:
        return ()

    @cached_property
    def samples(self) -> dict[str, Sample]:
        first = next(iter(LR.samples.values()))
        return {"only": first.model_copy(update={"id": "only"})}


class Failing(LumbarRadiculopathy):
    """A guideline whose rules refuse every case with an error at ``location``."""

    def __init__(self, location: str | None) -> None:
        super().__init__()
        self.location = location

    def evaluate(self, case: Any, on: dt.date) -> Assessment:
        raise InputError(self.location, "the rules cannot use this")


def _client_get(app: FastAPI, path: str, data: dict[str, str] | None = None) -> httpx.Response:
    async def run() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            if data is not None:
                return await client.post(path, data=data)
            return await client.get(path)

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()


def _app(registry: Registry) -> FastAPI:
    app = FastAPI()
    app.include_router(create_router(Settings(), registry))
    return app


TWO = _app(Registry((Other(), LR), LR.id))
ONE = _app(Registry((LR,), LR.id))
CASE = {"age": "45", "symptom_onset": "2026-11-01", "signs": "reflex_loss"}


def test_with_several_guidelines_the_start_page_lists_them() -> None:
    response = _client_get(TWO, "/?lang=en")
    assert response.status_code == 200
    page = parse(response.text)
    for package in (Other(), LR):
        item = page.get(f"guideline-{package.slug}")
        links = [a.attrs["href"] for a in item.by_tag("a")]
        assert links == [f"/{package.slug}/?lang=en"]
        assert package.content.title("en") in item.text()
        assert f"Version {package.content.version}" in item.text()
        assert "Not in force" in item.text()
    menu = [a.attrs["href"] for a in page.by_tag("nav")[0].by_tag("a")]
    assert menu == ["/?lang=en", "/integration?lang=en"]


def test_with_one_guideline_the_start_page_is_its_guide() -> None:
    start, own = _client_get(ONE, "/"), _client_get(ONE, f"/{LR.slug}/")
    assert start.status_code == own.status_code == 200
    for response in (start, own):
        assert LR.content.title("da") in response.text
        assert 'id="toc-title"' in response.text


@pytest.mark.parametrize("app", [ONE, TWO], ids=["one", "two"])
def test_each_guideline_has_its_pages_under_its_slug(app: FastAPI) -> None:
    other = "anden" if app is TWO else None
    for slug in filter(None, (LR.slug, other)):
        guide = _client_get(app, f"/{slug}/")
        assert guide.status_code == 200
        assert f'href="/{slug}/anbefalinger/mri"' in guide.text
        assert _client_get(app, f"/{slug}/anbefalinger/mri").status_code == 200
        assert _client_get(app, f"/{slug}/anbefalinger/nope").status_code == 404
        assert _client_get(app, f"/{slug}/pjece").status_code == 200
        form = _client_get(app, f"/{slug}/vurdering")
        assert f'action="/{slug}/vurdering"' in form.text
        result = _client_get(app, f"/{slug}/vurdering", CASE)
        assert result.status_code == 200
        assert 'id="result-mri"' in result.text
    if other:
        assert "En anden retningslinje" in _client_get(app, f"/{other}/").text


@pytest.mark.parametrize("app", [ONE, TWO], ids=["one", "two"])
def test_the_old_addresses_serve_the_default_guideline(app: FastAPI) -> None:
    """CDS Hooks cards already issued link to /anbefalinger/...: they must not break."""
    rec = _client_get(app, "/anbefalinger/mri")
    assert rec.status_code == 200
    assert LR.content.by_id["mri"].wording("da") in rec.text
    assert _client_get(app, "/pjece").status_code == 200
    form = _client_get(app, "/vurdering")
    assert f'action="/{LR.slug}/vurdering"' in form.text
    old = _client_get(app, "/vurdering", CASE)
    new = _client_get(app, f"/{LR.slug}/vurdering", CASE)
    assert old.status_code == new.status_code == 200
    ids = parse(old.text).get("record-summary-text").raw_text()
    assert ids == parse(new.text).get("record-summary-text").raw_text()


def test_the_integrators_page_shows_the_samples_of_the_guideline_chosen() -> None:
    default = parse(_client_get(TWO, "/integration").text)
    chosen = parse(_client_get(TWO, "/integration?guideline=anden").text)

    def titles(page: Any) -> list[str]:
        (samples,) = page.by_class("samples")
        return [e.text() for e in samples.by_tag("dt")]

    assert titles(default) == [s.title("da") for s in LR.samples.values()]
    assert titles(chosen) == [next(iter(LR.samples.values())).title("da")]
    options = [o.attrs["value"] for o in chosen.get("guideline-choice").by_tag("option")]
    assert options == ["anden", LR.slug]
    assert parse(_client_get(ONE, "/integration").text).by_id("guideline-choice") is None


@pytest.mark.parametrize(
    ("location", "field"),
    [
        ("symptom_onset", "symptom_onset"),
        ("$.planned[0]", "planned"),
        ("age", "age"),
        ("somewhere.else", "form"),
        (None, "form"),
    ],
)
def test_an_error_of_the_rules_lands_at_the_field_it_names(
    location: str | None, field: str
) -> None:
    package = Failing(location)
    form = CaseForm.from_items(package.form, list(CASE.items()))
    assert assess(form, package, "en", ON) is None
    assert list(form.errors) == [field]
    assert "the rules cannot use this" in form.errors[field]


def test_no_guideline_is_named_in_the_web_apps_templates_styles_or_code() -> None:
    words = re.compile(
        r"lumb|radikul|radicul|surgeon|rygkirurg|\bmri\b|\bmr-|red.flag|røde flag|12 (uger|weeks)"
        r"|akupunktur|acupunct|sengeleje|bed.rest|glukokortikoid|glucocorticoid"
    )
    for path in sorted(WEB.rglob("*")):
        if path.is_file() and path.suffix in (".py", ".html", ".css", ".js", ".toml"):
            found = words.search(path.read_text(encoding="utf-8").lower())
            assert found is None, (path.name, found)


@pytest.mark.parametrize(
    "data",
    [
        {"age": "45"},
        {"age": "45", "birth_date": "1980-01-01", "symptom_onset": "2026-11-01"},
        {"age": "200", "symptom_onset": "2026-11-01"},
        {"birth_date": "2099-01-01", "symptom_onset": "2026-11-01"},
        {"age": "45", "symptom_onset": "2026-11-01", "signs": "x", "mri_confirmed": "x"},
        {"age": "45", "symptom_onset": "2026-11-01", "spine_surgeon_assessment": "x"},
        {"age": "45", "symptom_onset": "2026-11-01", "planned": "x", "red_flags": "x"},
    ],
)
def test_every_error_in_the_summary_links_to_its_field(data: dict[str, str]) -> None:
    response = _client_get(ONE, "/vurdering", data)
    assert response.status_code == 400
    page = parse(response.text)
    (summary,) = page.by_class("error-summary")
    targets = [a.attrs["href"].removeprefix("#") for a in summary.by_tag("a")]
    assert targets
    for target in targets:
        element = page.get(target)
        assert element.tag == "input", target


def test_a_slug_that_is_an_address_of_the_app_is_refused() -> None:
    class Static(Other):
        @property
        def slug(self) -> str:
            return "static"

    with pytest.raises(InputError, match="'static' is an address of the app"):
        create_router(Settings(), Registry((Static(), LR), LR.id))


def test_the_apps_own_404_page_follows_its_registry() -> None:
    from nkr._app import create_app

    app = create_app(Settings(), Registry((Other(), LR), LR.id))
    response = _client_get(app, "/findes/ikke")
    assert response.status_code == 404
    links = [a.attrs["href"] for a in parse(response.text).get("main").by_tag("a")]
    assert links == ["/anden/", f"/{LR.slug}/"]
