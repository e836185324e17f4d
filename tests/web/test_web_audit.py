"""``/audit`` in ``nkr serve``: the newest report of ``NKR_AUDIT_DIR``, read-only, under a
policy that fits a self-contained page; off (404) unless configured; nothing of the request
reaches the file system, and no link leads out of the folder."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import httpx
import pytest

from nkr._app import create_app
from nkr._package import Registry, discover
from nkr._settings import Settings
from nkr.audit._report import render_report
from nkr.guidelines.lumbar_radiculopathy import package
from nkr.web._audit import REPORT_CSP, latest_report
from nkr.web._routes import RESERVED_SLUGS
from tests.audit._fixtures import INDICATORS, ON, ORGANIZATIONS, SUMMARY, figures
from tests.web._html import parse

SECRET = "not for the web: the folder's neighbour"


@cache
def _registry() -> Registry:
    return discover({})


@cache
def _report() -> str:
    return render_report(
        package().content,
        INDICATORS,
        figures(),
        SUMMARY,
        organizations=ORGANIZATIONS,
        generated=ON,
    )


def _get(
    settings: Settings, *paths: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> list[httpx.Response]:
    app = create_app(settings, _registry())

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            return [await client.request(method, path, headers=headers) for path in paths]

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, run()).result()


def _write(path: Path, text: str, mtime: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    os.utime(path, (mtime, mtime))
    return path


def test_off_unless_configured(tmp_path: Path) -> None:
    (response,) = _get(Settings(data_dir=tmp_path), "/audit")
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert "Siden findes ikke" in response.text
    assert Settings.from_env({"NKR_AUDIT_DIR": str(tmp_path)}).audit_dir == tmp_path
    # No guideline can take the address.
    assert "audit" in RESERVED_SLUGS


def test_no_report_yet_is_a_page_of_its_own(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, audit_dir=tmp_path / "audits")
    da, en = _get(settings, "/audit", "/audit?lang=en")
    assert da.status_code == 404
    assert parse(da.text).by_tag("h1")[0].text() == "Auditrapport"
    assert "Der er endnu ingen auditrapport" in da.text
    assert "There is no audit report yet" in en.text
    assert da.headers["cache-control"] == "no-store"
    assert "default-src 'self'" in da.headers["content-security-policy"]
    (tmp_path / "audits").mkdir()
    (empty,) = _get(settings, "/audit")
    assert empty.status_code == 404


def test_serves_the_report_as_written_under_its_own_policy(tmp_path: Path) -> None:
    report = _write(tmp_path / "audits" / "report.html", _report(), 1_700_000_000)
    settings = Settings(data_dir=tmp_path, audit_dir=tmp_path / "audits")
    (response,) = _get(settings, "/audit")
    assert response.status_code == 200
    assert response.content == report.read_bytes()
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    assert response.headers["content-security-policy"] == REPORT_CSP
    assert REPORT_CSP.startswith("default-src 'none'")
    assert "script-src" not in REPORT_CSP
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-cache"
    # Unchanged since: 304 without a body; HEAD: the headers alone.
    etag = response.headers["etag"]
    (again,) = _get(settings, "/audit", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    (head,) = _get(settings, "/audit", method="HEAD")
    assert head.status_code == 200
    assert head.headers["etag"] == etag


def test_the_newest_report_of_the_folder_or_its_subfolders(tmp_path: Path) -> None:
    root = tmp_path / "audits"
    _write(root / "report.html", "top, oldest", 1_700_000_000)
    _write(root / "2026-01" / "report.html", "january", 1_700_000_100)
    newest = _write(root / "2026-02" / "report.html", "february, newest", 1_700_000_200)
    # Not served, however new: a folder still being written, a file that is not a report,
    # a report two levels down, a folder named like the report.
    _write(root / ".writing" / "report.html", "half-written", 1_700_000_900)
    _write(root / "2026-03" / "figures.csv", "csv", 1_700_000_900)
    _write(root / "x" / "y" / "report.html", "too deep", 1_700_000_900)
    (root / "z" / "report.html").mkdir(parents=True)
    assert latest_report(root) == newest
    (response,) = _get(Settings(data_dir=tmp_path, audit_dir=root), "/audit")
    assert response.text == "february, newest"


def test_links_never_lead_out_of_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "audits"
    _write(root / "2026-01" / "report.html", "the report", 1_700_000_000)
    outside = _write(tmp_path / "elsewhere" / "report.html", SECRET, 1_700_000_900)
    # A newer report that is a link to a file outside, and a linked folder holding one.
    (root / "2026-02").mkdir()
    (root / "2026-02" / "report.html").symlink_to(outside)
    (root / "linked").symlink_to(outside.parent, target_is_directory=True)
    (root / "report.html").symlink_to(outside)
    assert latest_report(root) == root / "2026-01" / "report.html"
    (response,) = _get(Settings(data_dir=tmp_path, audit_dir=root), "/audit")
    assert response.text == "the report"


@pytest.mark.parametrize(
    "path",
    [
        "/audit/../elsewhere/report.html",
        "/audit/%2e%2e/elsewhere/report.html",
        "/audit/..%2felsewhere%2freport.html",
        "/audit/report.html",
        "/audit/2026-01/report.html",
        "/audit/",
        "/audit%2f..%2felsewhere%2freport.html",
        "/audit?path=../elsewhere/report.html",
        "/audit?file=/etc/passwd",
        "/audit;/../elsewhere/report.html",
        "/static/..%2f..%2felsewhere%2freport.html",
    ],
)
def test_no_path_from_the_request_touches_the_file_system(tmp_path: Path, path: str) -> None:
    root = tmp_path / "audits"
    _write(root / "2026-01" / "report.html", "the report", 1_700_000_000)
    _write(tmp_path / "elsewhere" / "report.html", SECRET, 1_700_000_900)
    (response,) = _get(Settings(data_dir=tmp_path, audit_dir=root), path)
    assert SECRET not in response.text
    assert "root:" not in response.text
    # The one page, whatever the query says; any other address has no page.
    if response.status_code == 200:
        assert response.text == "the report"
        assert path.startswith("/audit?")
    elif response.is_redirect:
        # The router's own redirect of a trailing slash, to the one page.
        assert httpx.URL(response.headers["location"]).path == "/audit"
    else:
        assert response.status_code in (400, 404), (path, response.status_code)
