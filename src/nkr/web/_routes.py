"""The web pages. Each handler reads its input, calls the engine where there is a patient,
and renders a template; nothing clinical is decided here."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse

from nkr._assessment import Assessment
from nkr._guideline import Lang, Recommendation
from nkr._render import assessment_summary
from nkr._settings import Settings
from nkr.guidelines.lumbar_radiculopathy import guideline
from nkr.web import _cds
from nkr.web._form import AGE_MAX, AGE_MIN, CASE_FIELDS, MRI_CHOICES, CaseForm, assess
from nkr.web._handout import handout
from nkr.web._pages import Clock, render, secure, static_files, url_for_lang, warm_up
from nkr.web._text import parse_lang

LangParam = Annotated[str | None, Query(max_length=5)]
ASSESSMENT_PATH = "/vurdering"
INTEGRATION_PATH = "/integration"


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
    # "if", "due" or "overdue" (or the spine-surgeon reason key when referred or done): how
    # the spine-surgeon date reads; None when it is not shown.
    deadline_kind: str | None
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
    deadline = a.spine_surgeon_deadline
    kind = None if deadline is None else deadline.key.removeprefix("surgeon-deadline-")
    return ResultView(tuple(attention), tuple(groups), kind, assessment_summary(a, lang))


def not_found_page(path: str, lang: str | None) -> HTMLResponse:
    """The web app's 404 page for an address that has no page."""
    return render(
        "not_found.html",
        lang=parse_lang(lang),
        path="/",
        clock=Clock(),
        status_code=404,
        nav=None,
        rec_id=None,
    )


def bad_request_page() -> HTMLResponse:
    """The web app's 400 page for an address whose parameters a page cannot use (such as an
    over-long ``lang``): the app's own page with its security headers, not FastAPI's JSON,
    and nothing of the address echoed. In Danish, the default: the language asked for is the
    parameter that could not be read."""
    return render(
        "bad_request.html",
        lang="da",
        path="/",
        clock=Clock(),
        status_code=400,
        no_store=True,
        nav=None,
    )


def create_router(settings: Settings) -> APIRouter:
    """The web pages: quick guide, recommendation pages, assessment, handout, integrators."""
    router = APIRouter(include_in_schema=False)
    g = guideline()
    # Load data and compile every template now, so that no request pays for it.
    warm_up()
    handout()
    _cds.samples()

    @router.get("/", response_class=HTMLResponse)
    def quick_guide(lang: LangParam = None) -> HTMLResponse:
        clock, language = Clock(), parse_lang(lang)
        return render("guide.html", lang=language, path="/", clock=clock, nav="guide")

    @router.get("/anbefalinger/{rec_id}", response_class=HTMLResponse)
    def recommendation(rec_id: str, lang: LangParam = None) -> HTMLResponse:
        clock, language = Clock(), parse_lang(lang)
        rec = g.by_id.get(rec_id)
        path = f"/anbefalinger/{rec_id}"
        if rec is None:
            return render(
                "not_found.html",
                lang=language,
                path=path,
                clock=clock,
                status_code=404,
                nav="guide",
                rec_id=rec_id,
            )
        index = g.recommendations.index(rec)
        return render(
            "recommendation.html",
            lang=language,
            path=path,
            clock=clock,
            nav="guide",
            rec=rec,
            number=index + 1,
            previous=g.recommendations[index - 1] if index > 0 else None,
            next=g.recommendations[index + 1] if index + 1 < len(g.recommendations) else None,
        )

    def _assessment_page(items: list[tuple[str, str]], clock: Clock) -> HTMLResponse:
        """The form, or (for a posted case) the result: patient data comes only in a POST
        body, never in a URL, where it would reach browser history and access logs."""
        params = dict(items)
        language = parse_lang(params.get("lang"))
        today = settings.today()
        has_case = any(name in params for name in CASE_FIELDS)
        form = CaseForm.from_items(items) if has_case else CaseForm.blank(today)
        if params.get("view") == "edit" or not has_case:
            return _form_page(form, language, clock)
        assessment = assess(form, g, language, today)
        if assessment is None:
            return _form_page(form, language, clock, status_code=400)
        return _result_page(
            assessment, form, language, clock, print_view=params.get("print") == "1"
        )

    def _form_page(
        form: CaseForm, lang: Lang, clock: Clock, status_code: int = 200
    ) -> HTMLResponse:
        return render(
            "assessment_form.html",
            lang=lang,
            path=ASSESSMENT_PATH,
            clock=clock,
            status_code=status_code,
            no_store=True,
            nav="assessment",
            form=form,
            mri_choices=MRI_CHOICES,
            age_min=AGE_MIN,
            age_max=AGE_MAX,
            switch_form=form.hidden_items() if form.errors else None,
        )

    def _result_page(
        a: Assessment, form: CaseForm, lang: Lang, clock: Clock, *, print_view: bool
    ) -> HTMLResponse:
        hidden = form.hidden_items()
        extra = [("print", "1")] if print_view else []
        return render(
            "assessment_result.html",
            lang=lang,
            path=ASSESSMENT_PATH,
            clock=clock,
            no_store=True,
            nav="assessment",
            a=a,
            form=form,
            result=a.to_json(lang, pain_threshold=settings.pain_threshold),
            view=result_view(a, lang),
            hidden=hidden,
            print_view=print_view,
            printed_on=settings.today(),
            # The language switch re-posts the case (no patient data in a URL).
            switch_form=hidden + extra,
        )

    @router.get(ASSESSMENT_PATH, response_class=HTMLResponse)
    def assessment_get(request: Request) -> Response:
        """The blank form. A case in the query (an old link, a hand-made URL) is never
        assessed nor echoed: it is answered with a redirect to the blank form, so that the
        address bar no longer shows it either."""
        clock = Clock()
        items = list(request.query_params.multi_items())
        if any(name != "lang" for name, _ in items):
            language = parse_lang(request.query_params.get("lang"))
            location = url_for_lang(ASSESSMENT_PATH, language)
            redirect = RedirectResponse(location, status_code=303)
            redirect.headers["Server-Timing"] = clock.header()
            return secure(redirect, no_store=True)
        return _assessment_page(items, clock)

    @router.post(ASSESSMENT_PATH, response_class=HTMLResponse)
    async def assessment_post(request: Request) -> HTMLResponse:
        clock = Clock()
        form = await request.form(max_files=0, max_fields=100)
        items = [(k, v) for k, v in form.multi_items() if isinstance(v, str)]
        return _assessment_page(items, clock)

    @router.get("/pjece", response_class=HTMLResponse)
    def patient_handout(lang: LangParam = None) -> HTMLResponse:
        clock, language = Clock(), parse_lang(lang)
        return render(
            "handout.html",
            lang=language,
            path="/pjece",
            clock=clock,
            nav="handout",
            handout=handout(),
        )

    async def _integration(request: Request, items: list[tuple[str, str]]) -> HTMLResponse:
        clock = Clock()
        params = dict(items)
        language = parse_lang(params.get("lang"))
        base_url = str(request.base_url).rstrip("/")
        discovery = await _cds.discover(request.app, language, base_url)
        result = None
        service = next((s for s in discovery.services if s.id == params.get("service")), None)
        sample = _cds.samples().get(params.get("sample", ""))
        if service is not None and sample is not None:
            result = await _cds.call_service(
                request.app, language, base_url, service, sample, settings.today()
            )
        partial = params.get("partial") == "1"
        return render(
            "integration_result.html" if partial else "integration.html",
            lang=language,
            path=INTEGRATION_PATH,
            clock=clock,
            nav="integration",
            discovery=discovery,
            samples=_cds.samples(),
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

    return router
