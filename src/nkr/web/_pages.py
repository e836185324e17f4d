"""Rendering: one Jinja2 environment (autoescaped), the shared page context, security headers
and static files served from memory."""

from __future__ import annotations

import datetime as dt
import hashlib
import mimetypes
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import jinja2
from fastapi import Response
from fastapi.responses import HTMLResponse

from nkr._guideline import LANGS, Lang
from nkr._package import GuidelinePackage
from nkr._render import grade_in_words
from nkr._texts import generic_texts
from nkr.web._spec import long_date

_HERE = Path(__file__).parent
STATIC_DIR = _HERE / "static"

# No inline script or style anywhere; nothing loaded from another origin.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
        "base-uri 'none'",
        "object-src 'none'",
    )
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=(), payment=()",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


@dataclass(frozen=True, slots=True)
class StaticFile:
    body: bytes
    media_type: str
    etag: str


@cache
def static_files() -> dict[str, StaticFile]:
    """Every file under ``static/``, read once; the ETag doubles as a cache-busting version."""
    files: dict[str, StaticFile] = {}
    for path in sorted(STATIC_DIR.iterdir()):
        if path.is_file():
            body = path.read_bytes()
            media_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
            if media_type.startswith("text/") or media_type.endswith("javascript"):
                media_type += "; charset=utf-8"
            files[path.name] = StaticFile(body, media_type, hashlib.sha256(body).hexdigest()[:16])
    return files


def static_url(name: str) -> str:
    return f"/static/{name}?v={static_files()[name].etag}"


def parse_lang(value: str | None) -> Lang:
    """The page language from a ``lang`` parameter; Danish unless English is asked for."""
    for lang in LANGS:
        if value == lang:
            return lang
    return "da"


def url_for_lang(path: str, lang: Lang, params: list[tuple[str, str]] | None = None) -> str:
    """A page URL in ``lang``: Danish is the default and carries no parameter."""
    query = [(k, v) for k, v in params or [] if k != "lang"]
    if lang != "da":
        query.append(("lang", lang))
    return f"{path}?{urlencode(query)}" if query else path


@cache
def environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        auto_reload=False,
    )
    env.globals.update(
        static_url=static_url,
        url=url_for_lang,
        grade_in_words=grade_in_words,
        LANGS=LANGS,
    )
    return env


def warm_up() -> None:
    """Compile every template and read every static file once, at start-up."""
    generic_texts()
    env = environment()
    for name in env.list_templates(extensions=["html"]):
        env.get_template(name)
    static_files()


class Clock:
    """Server time of one request, reported in the ``Server-Timing`` header."""

    def __init__(self) -> None:
        self.started = time.perf_counter()

    def header(self) -> str:
        return f"app;dur={(time.perf_counter() - self.started) * 1000:.2f}"


def secure(response: Response, *, no_store: bool = False) -> Response:
    response.headers.update(SECURITY_HEADERS)
    if no_store:
        # Assessment pages hold patient data: keep them out of every cache.
        response.headers["Cache-Control"] = "no-store"
    return response


def render(
    template: str,
    *,
    lang: Lang,
    path: str,
    clock: Clock,
    package: GuidelinePackage | None,
    links: tuple[tuple[str, str], ...],
    status_code: int = 200,
    no_store: bool = False,
    query: list[tuple[str, str]] | None = None,
    switch_form: list[tuple[str, str]] | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a page with the shared context: language, language switch, navigation, and the
    guideline the page is about (``package``; None on a page about none): its content as
    ``g``, its texts behind ``_`` (falling back on the generic texts), its URLs under
    ``base``.

    ``switch_form`` carries the fields of a posted form, so that switching language on a result
    page re-posts it instead of putting patient data in a URL."""
    other: Lang = "en" if lang == "da" else "da"
    texts = generic_texts() if package is None else package.texts

    def _(key: str, **params: object) -> str:
        return texts(key, lang, **params)

    def date_words(value: dt.date) -> str:
        return long_date(value, lang, texts)

    html = (
        environment()
        .get_template(template)
        .render(
            lang=lang,
            other_lang=other,
            path=path,
            switch_href=url_for_lang(path, other, query),
            switch_form=switch_form,
            _=_,
            texts=texts,
            long_date=date_words,
            package=package,
            g=None if package is None else package.content,
            base="" if package is None else f"/{package.slug}",
            links=links,
            **context,
        )
    )
    response = HTMLResponse(html, status_code=status_code)
    secure(response, no_store=no_store)
    response.headers["Server-Timing"] = clock.header()
    return response
