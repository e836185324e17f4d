"""The web pages. Each handler reads its input, calls the guideline's rules where there is a
patient, and renders a template; nothing clinical is decided here.

Every installed guideline has its pages under ``/{slug}/``; the default guideline's pages also
answer at the addresses they had before guidelines had slugs (``/anbefalinger/{rec_id}``,
``/vurdering``, ``/pjece``), which CDS Hooks cards already issued link to. ``/`` is the
default guideline's quick guide when it is the only one, else the list of guidelines.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from nkr import _package
from nkr._assessment import Assessment
from nkr._errors import InputError
from nkr._guideline import Lang, Recommendation
from nkr._package import GuidelinePackage, Registry
from nkr._render import assessment_summary
from nkr._settings import Settings
from nkr.web import _cds
from nkr.web._audit import add_audit
from nkr.web._form import CaseForm, assess, has_case
from nkr.web._pages import Clock, parse_lang, render, secure, static_files, url_for_lang, warm_up

LangParam = Annotated[str | None, Query(max_length=5)]
INTEGRATION_PATH = "/integration"
# First path segments taken by the app's own pages and APIs: no guideline's slug.
RESERVED_SLUGS = frozenset(
    {"static", "integration", "anbefalinger", "vurdering", "pjece", "cds-services", "fhir", "audit"}
    | {"healthz", "readyz", "metrics", "_bench", "docs", "openapi.json"}
)


@dataclass(frozen=True, slots=True)
class ResultItem:
    """One recommendation as the result page shows it. ``shown`` is the status as presented:
    the engine's, except that a recommendation *against* that merely applies is shown as
    ``applies-against`` (never as the go-ahead a recommendation for would get)."""

    rec: Recommendation
    status: str
    shown: str
    reason: str
    wording: str


@dataclass(frozen=True, slots=True)
class ResultGroup:
    """Recommendations with the same shown status and the same reason: one line on the page,
    the recommendations inside. A group of one is shown as the item itself."""

    anchor: str
    shown: str
    reason: str
    items: tuple[ResultItem, ...]


@dataclass(frozen=True, slots=True)
class ResultView:
    attention: tuple[ResultItem, ...]
    groups: tuple[ResultGroup, ...]
    summary: str


def result_view(a: Assessment, lang: Lang) -> ResultView:
    """What needs attention first (caution, due, overdue), then the rest grouped by shown
    status and reason, in the guideline's order of each group's first recommendation."""
    g = a.guideline
    attention: list[ResultItem] = []
    grouped: dict[tuple[str, str], list[ResultItem]] = {}
    for r in a.results:
        rec = r.recommendation
        item = ResultItem(
            rec=rec,
            status=r.status.value,
            shown="applies-against" if r.applies_against else r.status.value,
            reason=r.reason.text(g, lang),
            wording=rec.wording(lang),
        )
        if r.status.needs_attention:
            attention.append(item)
        else:
            grouped.setdefault((item.shown, item.reason), []).append(item)
    groups: list[ResultGroup] = []
    for (shown, reason), members in grouped.items():
        same = sum(1 for group in groups if group.shown == shown)
        anchor = f"group-{shown}" if same == 0 else f"group-{shown}-{same + 1}"
        groups.append(ResultGroup(anchor, shown, reason, tuple(members)))
    return ResultView(tuple(attention), tuple(groups), assessment_summary(a, lang))


def _links(reg: Registry, package: GuidelinePackage | None) -> tuple[tuple[str, str], ...]:
    """The main menu: the list of guidelines when there are several, the pages of the
    guideline shown, the integrators' page."""
    links: list[tuple[str, str]] = [("guidelines", "/")] if len(reg.packages) > 1 else []
    if package is not None:
        base = f"/{package.slug}"
        links += [("guide", f"{base}/"), ("assessment", f"{base}/vurdering")]
        links.append(("handout", f"{base}/pjece"))
    links.append(("integration", INTEGRATION_PATH))
    return tuple(links)


def _site_package(reg: Registry) -> GuidelinePackage | None:
    """The guideline a page about none is shown with: the only one installed, if so."""
    return reg.default if len(reg.packages) == 1 else None


def not_found_page(path: str, lang: str | None, registry: Registry | None = None) -> HTMLResponse:
    """The web app's 404 page for an address that has no page."""
    reg = registry or _package.registry()
    package = _site_package(reg)
    return render(
        "not_found.html",
        lang=parse_lang(lang),
        path="/",
        clock=Clock(),
        package=package,
        links=_links(reg, package),
        status_code=404,
        nav=None,
        rec_id=None,
        guidelines=reg.packages,
    )


def bad_request_page(registry: Registry | None = None) -> HTMLResponse:
    """The web app's 400 page for an address whose parameters a page cannot use (such as an
    over-long ``lang``): the app's own page with its security headers, not FastAPI's JSON,
    and nothing of the address echoed. In Danish, the default: the language asked for is the
    parameter that could not be read."""
    reg = registry or _package.registry()
    package = _site_package(reg)
    return render(
        "bad_request.html",
        lang="da",
        path="/",
        clock=Clock(),
        package=package,
        links=_links(reg, package),
        status_code=400,
        no_store=True,
        nav=None,
    )


def create_router(settings: Settings, registry: Registry | None = None) -> APIRouter:
    """The web pages of every guideline in ``registry`` (default: the installed ones): quick
    guide, recommendation pages, assessment, handout; the list of guidelines; integrators."""
    reg = registry or _package.registry()
    taken = sorted(p.slug for p in reg.packages if p.slug in RESERVED_SLUGS)
    if taken:
        raise InputError(f"guideline slug '{taken[0]}' is an address of the app itself")
    router = APIRouter(include_in_schema=False)
    # Load data and compile every template now, so that no request pays for it.
    warm_up()
    for package in reg.packages:
        _ = package.form, package.handout, package.samples

    @router.get("/static/{name}")
    def static(name: str, request: Request) -> Response:
        file = static_files().get(name)
        if file is None:
            return secure(Response("Not found", status_code=404, media_type="text/plain"))
        etag = f'"{file.etag}"'
        headers = {"ETag": etag, "Cache-Control": "public, max-age=86400"}
        if request.headers.get("if-none-match") == etag:
            return secure(Response(status_code=304, headers=headers))
        return secure(Response(file.body, media_type=file.media_type, headers=headers))

    def page(template: str, package: GuidelinePackage | None, **context: Any) -> HTMLResponse:
        return render(template, package=package, links=_links(reg, package), **context)

    def guidelines(lang: LangParam = None) -> HTMLResponse:
        return page(
            "guidelines.html",
            None,
            lang=parse_lang(lang),
            path="/",
            clock=Clock(),
            nav="guidelines",
            guidelines=reg.packages,
        )

    for package in reg.packages:
        _add_guideline(router, page, settings, package, f"/{package.slug}")
    several = len(reg.packages) > 1
    _add_guideline(router, page, settings, reg.default, "", guide=not several)
    if several:
        router.add_api_route("/", guidelines, methods=["GET"], response_class=HTMLResponse)

    async def _integration(request: Request, items: list[tuple[str, str]]) -> HTMLResponse:
        clock = Clock()
        params = dict(items)
        language = parse_lang(params.get("lang"))
        selected = reg.by_slug(params.get("guideline", "")) or reg.default
        base_url = str(request.base_url).rstrip("/")
        discovery = await _cds.discover(request.app, language, base_url)
        result = None
        service = next((s for s in discovery.services if s.id == params.get("service")), None)
        owners = {s.id: p for p in reg.packages for s in p.services}
        sample = selected.samples.get(params.get("sample", ""))
        # A guideline's samples go to its own services only (another guideline would read
        # them as no patient of its own).
        if service is not None and sample is not None and owners.get(service.id) is selected:
            result = await _cds.call_service(
                request.app, language, base_url, service, sample, settings.today()
            )
        partial = params.get("partial") == "1"
        return page(
            "integration_result.html" if partial else "integration.html",
            selected,
            lang=language,
            path=INTEGRATION_PATH,
            clock=clock,
            nav="integration",
            discovery=discovery,
            owners=owners,
            guidelines=reg.packages,
            samples=selected.samples,
            query=[("guideline", selected.slug)] if "guideline" in params else None,
            result=result,
            selected_service=params.get("service", ""),
            selected_sample=params.get("sample", ""),
            status_code=400 if (params.get("service") and result is None) else 200,
        )

    @router.get(INTEGRATION_PATH, response_class=HTMLResponse)
    async def integration_get(request: Request) -> HTMLResponse:
        return await _integration(request, list(request.query_params.multi_items()))

    @router.post(INTEGRATION_PATH, response_class=HTMLResponse)
    async def integration_post(request: Request) -> HTMLResponse:
        form = await request.form(max_files=0, max_fields=20)
        items = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        return await _integration(request, items)

    add_audit(router, page, settings, _site_package(reg))
    return router


Page = Callable[..., HTMLResponse]


def _add_guideline(
    router: APIRouter,
    page: Page,
    settings: Settings,
    package: GuidelinePackage,
    prefix: str,
    *,
    guide: bool = True,
) -> None:
    """The pages of ``package`` under ``prefix``: ``/{slug}`` for each guideline, and ``""``
    for the default one (with ``guide`` false when ``/`` is the list of guidelines)."""
    g = package.content
    spec = package.form

    def quick_guide(lang: LangParam = None) -> HTMLResponse:
        return page(
            "guide.html",
            package,
            lang=parse_lang(lang),
            path=f"{prefix}/",
            clock=Clock(),
            nav="guide",
        )

    def recommendation(rec_id: str, lang: LangParam = None) -> HTMLResponse:
        clock, language = Clock(), parse_lang(lang)
        rec = g.by_id.get(rec_id)
        path = f"{prefix}/anbefalinger/{rec_id}"
        if rec is None:
            return page(
                "not_found.html",
                package,
                lang=language,
                path=path,
                clock=clock,
                status_code=404,
                nav="guide",
                rec_id=rec_id,
                guidelines=(),
            )
        index = g.recommendations.index(rec)
        return page(
            "recommendation.html",
            package,
            lang=language,
            path=path,
            clock=clock,
            nav="guide",
            rec=rec,
            number=index + 1,
            previous=g.recommendations[index - 1] if index > 0 else None,
            next=g.recommendations[index + 1] if index + 1 < len(g.recommendations) else None,
        )

    assessment_path = f"{prefix}/vurdering"

    def assessment_page(items: list[tuple[str, str]], clock: Clock) -> HTMLResponse:
        """The form, or (for a posted case) the result: patient data comes only in a POST
        body, never in a URL, where it would reach browser history and access logs."""
        params = dict(items)
        language = parse_lang(params.get("lang"))
        today = settings.today()
        posted = has_case(spec, items)
        form = CaseForm.from_items(spec, items) if posted else CaseForm.blank(spec, today)
        if params.get("view") == "edit" or not posted:
            return form_page(form, language, clock)
        assessment = assess(form, package, language, today)
        if assessment is None:
            return form_page(form, language, clock, status_code=400)
        return result_page(assessment, form, language, clock, print_view=params.get("print") == "1")

    def form_page(form: CaseForm, lang: Lang, clock: Clock, status_code: int = 200) -> HTMLResponse:
        return page(
            "assessment_form.html",
            package,
            lang=lang,
            path=assessment_path,
            clock=clock,
            status_code=status_code,
            no_store=True,
            nav="assessment",
            form=form,
            spec=spec,
            switch_form=form.hidden_items() if form.errors else None,
        )

    def result_page(
        a: Assessment, form: CaseForm, lang: Lang, clock: Clock, *, print_view: bool
    ) -> HTMLResponse:
        hidden = form.hidden_items()
        extra = [("print", "1")] if print_view else []
        return page(
            "assessment_result.html",
            package,
            lang=lang,
            path=assessment_path,
            clock=clock,
            no_store=True,
            nav="assessment",
            a=a,
            form=form,
            spec=spec,
            result=a.to_json(lang),
            view=result_view(a, lang),
            hidden=hidden,
            print_view=print_view,
            printed_on=settings.today(),
            # The language switch re-posts the case (no patient data in a URL).
            switch_form=hidden + extra,
        )

    def assessment_get(request: Request) -> Response:
        """The blank form. A case in the query (an old link, a hand-made URL) is never
        assessed nor echoed: it is answered with a redirect to the blank form, so that the
        address bar no longer shows it either."""
        clock = Clock()
        items = list(request.query_params.multi_items())
        if any(name != "lang" for name, _ in items):
            language = parse_lang(request.query_params.get("lang"))
            location = url_for_lang(assessment_path, language)
            redirect = RedirectResponse(location, status_code=303)
            redirect.headers["Server-Timing"] = clock.header()
            return secure(redirect, no_store=True)
        return assessment_page(items, clock)

    async def assessment_post(request: Request) -> HTMLResponse:
        clock = Clock()
        form = await request.form(max_files=0, max_fields=100)
        items = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        return assessment_page(items, clock)

    def patient_handout(lang: LangParam = None) -> HTMLResponse:
        return page(
            "handout.html",
            package,
            lang=parse_lang(lang),
            path=f"{prefix}/pjece",
            clock=Clock(),
            nav="handout",
            handout=package.handout,
        )

    html = HTMLResponse
    router.add_api_route(f"{prefix}/anbefalinger/{{rec_id}}", recommendation, response_class=html)
    router.add_api_route(assessment_path, assessment_get, methods=["GET"], response_class=html)
    router.add_api_route(assessment_path, assessment_post, methods=["POST"], response_class=html)
    router.add_api_route(f"{prefix}/pjece", patient_handout, response_class=html)
    if guide:
        router.add_api_route(f"{prefix}/", quick_guide, response_class=html)
