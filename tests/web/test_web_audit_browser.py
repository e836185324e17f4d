"""The audit report in a real headless Chromium, opened from a file with the network off: it
renders, asks for nothing at all, passes axe-core, and prints on A4 with each indicator on
pages of its own."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from playwright.sync_api import BrowserContext, Page, Route, expect

from nkr._guideline import Lang
from nkr._settings import Settings
from nkr.audit._report import render_report
from nkr.guidelines.lumbar_radiculopathy import package
from nkr.web._audit import REPORT_CSP
from tests.audit._fixtures import INDICATORS, MIN_CELL, ON, ORGANIZATIONS, SUMMARY, figures
from tests.web.test_web_audit import _get

Shot = Callable[..., None]
Check = Callable[[Page], None]
G = package().content


def _pages(pdf: bytes) -> int:
    return len(re.findall(rb"/Type\s*/Page\b(?!s)", pdf))


@pytest.mark.parametrize("lang", ["da", "en"])
def test_report_from_a_file_renders_offline_and_prints(
    context: BrowserContext, tmp_path: Path, lang: Lang, shot: Shot, accessible: Check
) -> None:
    report = tmp_path / "report.html"
    report.write_text(
        render_report(
            G,
            INDICATORS,
            figures(),
            SUMMARY,
            lang=lang,
            organizations=ORGANIZATIONS,
            min_cell=MIN_CELL,
            generated=ON,
        ),
        encoding="utf-8",
    )
    url = report.as_uri()
    requests: list[str] = []
    problems: list[str] = []

    def only_the_file(route: Route) -> None:
        if route.request.url == url:
            route.continue_()
        else:
            route.abort()

    context.set_offline(True)
    context.route("**/*", only_the_file)
    page = context.new_page()
    page.on("request", lambda req: requests.append(req.url))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: problems.append(str(exc)))
    page.goto(url)

    expect(page.locator("html")).to_have_attribute("lang", lang)
    expect(page.locator("h1")).to_have_text(G.title(lang))
    sections = page.locator("section.indicator")
    expect(sections).to_have_count(len(INDICATORS))
    charts = page.locator("figure.chart svg")
    expect(charts).to_have_count(2 * len(INDICATORS))
    for i in range(charts.count()):
        box = charts.nth(i).bounding_box()
        assert box is not None
        assert box["width"] > 600
        assert 100 < box["height"] < 600
    # Drawn text is text: the organisation's name as given, "$" and all.
    expect(page.locator("#indicator-mri figure.chart svg").nth(1)).to_contain_text(
        "Klinik $Vest$ <script>"
    )
    accessible(page)
    assert requests == [url]
    assert problems == []
    shot(page, f"audit-report-{lang}")

    pdf = page.pdf(format="A4", print_background=True)
    pages = _pages(pdf)
    # A cover (summary, how to read, contents) then each indicator from a new page, 1-3 each.
    assert 1 + len(INDICATORS) <= pages <= 2 + 3 * len(INDICATORS), pages
    page.emulate_media(media="print")
    breaks = [sections.nth(i).evaluate("e => getComputedStyle(e).breakBefore") for i in range(3)]
    assert breaks == ["page"] * len(INDICATORS)
    assert requests == [url]


def test_report_under_the_audit_page_policy(context: BrowserContext, tmp_path: Path) -> None:
    """What /audit answers, as a browser gets it: the report under the page's own
    Content-Security-Policy (sandboxed, inline styles only) renders whole, with no violation."""
    folder = tmp_path / "audits" / "2026-12"
    folder.mkdir(parents=True)
    (folder / "report.html").write_text(
        render_report(G, INDICATORS, figures(), SUMMARY, organizations=ORGANIZATIONS),
        encoding="utf-8",
    )
    settings = Settings(data_dir=tmp_path, audit_dir=tmp_path / "audits")
    (answer,) = _get(settings, "/audit")
    assert answer.headers["content-security-policy"] == REPORT_CSP
    url = "http://127.0.0.1:9/audit"
    problems: list[str] = []
    requests: list[str] = []
    context.route(
        "**/*",
        lambda route: (
            route.fulfill(status=200, headers=dict(answer.headers), body=answer.content)
            if route.request.url == url
            else route.abort()
        ),
    )
    page = context.new_page()
    page.on("request", lambda req: requests.append(req.url))
    page.on("console", lambda msg: problems.append(msg.text) if msg.type == "error" else None)
    page.goto(url)
    charts = page.locator("figure.chart svg")
    expect(charts).to_have_count(2 * len(INDICATORS))
    box = charts.first.bounding_box()
    assert box is not None
    assert box["width"] > 600
    # The inline styles apply (a sandboxed page keeps them): the overall box has its colour.
    background = page.locator(".overall").first.evaluate("e => getComputedStyle(e).backgroundColor")
    assert background == "rgb(243, 245, 247)"
    assert problems == []
    assert requests == [url]
