"""``GET /audit``: the latest population-audit report, read-only, for quality teams.

On only when ``NKR_AUDIT_DIR`` is set (otherwise there is no such page: 404). The page is the
newest ``report.html`` that ``nkr audit --out`` wrote into that folder: the folder's own
``report.html`` or one in a folder directly inside it, the newest by modification time.
Nothing of the request names a file: the address has no path or query that reaches the file
system, so there is nothing to traverse. Only regular files are served and symbolic links are
never followed (neither a linked folder nor a linked report), so nothing outside the folder is
ever read; folders whose name starts with a dot (an audit still writing) are skipped.

The report is self-contained (inline styles and SVG, no script): its Content-Security-Policy
allows exactly that, and sandboxes it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Final

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse

from nkr._package import GuidelinePackage
from nkr._settings import Settings
from nkr.web._pages import SECURITY_HEADERS, Clock, parse_lang

AUDIT_PATH: Final = "/audit"
REPORT_NAME: Final = "report.html"
# A self-contained page: its own inline styles and data: images, nothing else at all.
REPORT_CSP: Final = "; ".join(
    (
        "default-src 'none'",
        "style-src 'unsafe-inline'",
        "img-src data:",
        "form-action 'none'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "sandbox",
    )
)

Page = Callable[..., HTMLResponse]


def latest_report(folder: Path) -> Path | None:
    """The newest ``report.html`` in ``folder`` or in a folder directly inside it (regular
    files only, no symbolic link followed); None when there is none."""
    candidates = [folder / REPORT_NAME]
    try:
        with os.scandir(folder) as entries:
            candidates += [
                Path(entry.path) / REPORT_NAME
                for entry in entries
                if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False)
            ]
    except OSError:
        return None
    newest: tuple[int, str, Path] | None = None
    for path in candidates:
        try:
            info = path.lstat()
        except OSError:
            continue
        if stat.S_ISREG(info.st_mode):
            key = (info.st_mtime_ns, path.parent.name, path)
            if newest is None or key[:2] > newest[:2]:
                newest = key
    return None if newest is None else newest[2]


def read_report(path: Path) -> bytes | None:
    """The report's bytes, opened without following a link (it may have been replaced by one
    since it was found); None when it is gone or is no regular file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as file:
        if not stat.S_ISREG(os.fstat(file.fileno()).st_mode):
            return None
        return file.read()


def _latest(folder: Path) -> bytes | None:
    path = latest_report(folder)
    return None if path is None else read_report(path)


def add_audit(
    router: APIRouter, page: Page, settings: Settings, package: GuidelinePackage | None
) -> None:
    """``GET /audit`` on ``router`` when ``NKR_AUDIT_DIR`` is set; the page that says there is
    no report yet is the web app's, shown with ``package`` (the only guideline, if so)."""
    folder = settings.audit_dir
    if folder is None:
        return

    @router.api_route(AUDIT_PATH, methods=["GET", "HEAD"], response_class=HTMLResponse)
    async def audit(
        request: Request, lang: Annotated[str | None, Query(max_length=5)] = None
    ) -> Response:
        clock = Clock()
        # Disk work: not on the event loop.
        body = await asyncio.to_thread(_latest, folder)
        if body is None:
            return page(
                "audit_missing.html",
                package,
                lang=parse_lang(lang),
                path=AUDIT_PATH,
                clock=clock,
                status_code=404,
                no_store=True,
                nav=None,
            )
        etag = f'"{hashlib.sha256(body).hexdigest()[:32]}"'
        headers = {
            **SECURITY_HEADERS,
            "Content-Security-Policy": REPORT_CSP,
            # A new audit replaces the report: always revalidated, cheap when unchanged.
            "Cache-Control": "no-cache",
            "ETag": etag,
            "Server-Timing": clock.header(),
        }
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        return HTMLResponse(body, headers=headers)
