"""The integrators' page: the app's own CDS Hooks services (of every installed guideline), the
sample patients of a guideline, rendered cards.

Calls go to the same application in-process (no network), exactly as an EHR would send them:
discovery first, then a hook request with prefetch. Cards are shown as an EHR shows them;
their markdown is rendered with raw HTML disabled and unsafe link schemes refused. The calls
are marked as the page's own in their ASGI scope, so that the service does not count their
cards as shown to a clinician (nor accepts feedback on them).
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from markdown_it import MarkdownIt
from markupsafe import Markup
from starlette.types import ASGIApp, Receive, Scope, Send

from nkr._guideline import Lang
from nkr.cdshooks._feedback import INTERNAL_CALL
from nkr.web._spec import Sample

_RELATIVE_DATE = re.compile(r"^\$\{today([+-]\d+)d\}$")
_INDICATORS = ("info", "warning", "critical")
_TIMEOUT_SECONDS = 5.0
_INTERNAL_BASE = "http://nkr.internal"


def _resolve_dates(value: Any, today: dt.date) -> Any:
    """Replace ``${today-20d}`` strings by ISO dates, so samples never go stale."""
    if isinstance(value, dict):
        return {k: _resolve_dates(v, today) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolve_dates(v, today) for v in value]
    if isinstance(value, str) and (match := _RELATIVE_DATE.match(value)):
        return (today + dt.timedelta(days=int(match.group(1)))).isoformat()
    return value


def _bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "searchset",
        "total": len(resources),
        "entry": [{"resource": r} for r in resources],
    }


def hook_request(sample: Sample, hook: str, today: dt.date) -> dict[str, Any]:
    """The CDS Hooks 2.0 request an EHR would send for ``sample`` on ``hook``."""
    data = _resolve_dates(sample.model_dump(by_alias=True), today)
    patient_id = data["patient"].get("id", sample.id)
    context: dict[str, Any] = {"userId": "Practitioner/sample-gp", "patientId": patient_id}
    drafts = data["draftOrders"]
    if hook == "order-select":
        context["selections"] = [f"{r['resourceType']}/{r['id']}" for r in drafts]
        context["draftOrders"] = _bundle(drafts)
    elif hook == "order-sign":
        context["draftOrders"] = _bundle(drafts)
    return {
        "hook": hook,
        "hookInstance": str(uuid.uuid4()),
        "context": context,
        "prefetch": {
            "patient": data["patient"],
            "conditions": _bundle(data["conditions"]),
            "observations": _bundle(data["observations"]),
            "procedures": _bundle(data["procedures"]),
            "serviceRequests": _bundle(data["serviceRequests"]),
        },
    }


_MARKDOWN = MarkdownIt("commonmark", {"html": False, "linkify": False, "typographer": False})


def render_markdown(source: str) -> Markup:
    """Card markdown as HTML: raw HTML is shown as text, javascript: and similar links are
    not made into links (markdown-it's own link validation)."""
    return Markup(_MARKDOWN.render(source))


def _safe_url(url: object) -> str | None:
    if isinstance(url, str) and url.lower().startswith(("https://", "http://", "/")):
        return url
    return None


def _str(value: object) -> str:
    return value if isinstance(value, str) else ""


@dataclass(frozen=True, slots=True)
class CardView:
    """A card reduced to what the page shows; every string still to be escaped."""

    indicator: str
    summary: str
    detail: Markup
    source_label: str
    source_url: str | None
    topic: str
    suggestions: tuple[tuple[str, bool, tuple[str, ...]], ...]
    links: tuple[tuple[str, str | None, str], ...]
    override_reasons: tuple[str, ...]


def card_view(card: dict[str, Any]) -> CardView:
    """A card from a service's response, tolerant of missing or ill-typed fields."""
    indicator = _str(card.get("indicator"))
    source = card.get("source") if isinstance(card.get("source"), dict) else {}
    assert isinstance(source, dict)
    topic = source.get("topic") if isinstance(source.get("topic"), dict) else {}
    assert isinstance(topic, dict)
    suggestions = tuple(
        (
            _str(s.get("label")),
            s.get("isRecommended") is True,
            tuple(
                _str(a.get("description")) or _str(a.get("type"))
                for a in s.get("actions", [])
                if isinstance(a, dict)
            ),
        )
        for s in card.get("suggestions", [])
        if isinstance(s, dict)
    )
    links = tuple(
        (_str(link.get("label")), _safe_url(link.get("url")), _str(link.get("type")))
        for link in card.get("links", [])
        if isinstance(link, dict)
    )
    reasons = tuple(
        _str(r.get("display")) or _str(r.get("code"))
        for r in card.get("overrideReasons", [])
        if isinstance(r, dict)
    )
    return CardView(
        indicator=indicator if indicator in _INDICATORS else "info",
        summary=_str(card.get("summary")),
        detail=render_markdown(_str(card.get("detail"))),
        source_label=_str(source.get("label")),
        source_url=_safe_url(source.get("url")),
        topic=_str(topic.get("display")) or _str(topic.get("code")),
        suggestions=suggestions,
        links=links,
        override_reasons=reasons,
    )


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    hook: str
    title: str
    description: str
    prefetch_keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Discovery:
    services: tuple[Service, ...]
    # HTTP status of the discovery call, or 0 when it could not be made.
    status: int


@dataclass(frozen=True, slots=True)
class HookResult:
    service: Service
    sample: Sample
    status: int
    cards: tuple[CardView, ...]
    request_json: str
    response_json: str
    elapsed_ms: float


def _in_process(app: ASGIApp) -> ASGIApp:
    """``app``, with every request's scope marked as a call of this page: not EHR traffic.
    The mark is a key of the ASGI scope, which only code in this process can set; no header or
    other part of an HTTP request reaches it."""

    async def marked(scope: Scope, receive: Receive, send: Send) -> None:
        await app({**scope, INTERNAL_CALL: True}, receive, send)

    return marked


def _client(app: ASGIApp, lang: Lang, base_url: str) -> httpx.AsyncClient:
    # The page's own base URL, so that links in the cards point where the user can follow them.
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=_in_process(app)),
        base_url=base_url or _INTERNAL_BASE,
        headers={"Accept-Language": lang, "Accept": "application/json"},
        timeout=_TIMEOUT_SECONDS,
    )


async def discover(app: ASGIApp, lang: Lang, base_url: str) -> Discovery:
    """``GET /cds-services`` on the running application."""
    try:
        async with _client(app, lang, base_url) as client:
            response = await client.get("/cds-services")
    except httpx.HTTPError:
        return Discovery((), 0)
    if response.status_code != 200:
        return Discovery((), response.status_code)
    try:
        body = response.json()
        raw = body.get("services", []) if isinstance(body, dict) else []
    except ValueError:
        raw = []
    services = tuple(
        Service(
            id=_str(s.get("id")),
            hook=_str(s.get("hook")),
            title=_str(s.get("title")),
            description=_str(s.get("description")),
            prefetch_keys=tuple(sorted(s.get("prefetch") or {})),
        )
        for s in raw
        if isinstance(s, dict) and s.get("id")
    )
    return Discovery(services, 200)


def _pretty(data: Any) -> str:
    return orjson.dumps(data, option=orjson.OPT_INDENT_2).decode()


async def call_service(
    app: ASGIApp, lang: Lang, base_url: str, service: Service, sample: Sample, today: dt.date
) -> HookResult:
    """Send ``sample`` to ``service`` and collect the cards it answers with."""
    request = hook_request(sample, service.hook, today)
    started = dt.datetime.now(dt.UTC)
    try:
        async with _client(app, lang, base_url) as client:
            response = await client.post(
                f"/cds-services/{service.id}",
                content=orjson.dumps(request),
                headers={"Content-Type": "application/json"},
            )
            status, body_text = response.status_code, response.text
    except httpx.HTTPError as exc:
        status, body_text = 0, str(exc)
    elapsed = (dt.datetime.now(dt.UTC) - started).total_seconds() * 1000
    cards: tuple[CardView, ...] = ()
    try:
        body = orjson.loads(body_text)
        response_json = _pretty(body)
        if status == 200 and isinstance(body, dict):
            cards = tuple(card_view(c) for c in body.get("cards", []) if isinstance(c, dict))
    except orjson.JSONDecodeError:
        response_json = body_text
    return HookResult(
        service, sample, status, cards, _pretty(request), response_json, round(elapsed, 1)
    )
