"""Cards from an assessment: the CDS Hooks rendering of what the engine decided.

Nothing here decides anything clinical. Which recommendation needs attention, and why, comes
from the :class:`~nkr.Assessment`; the wording, grades and reasons come from the guideline's
data; the card frame comes from ``messages.toml``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any, Concatenate, ParamSpec, TypeVar

from nkr._assessment import Assessment, Reason, RecommendationResult, RecStatus, Term
from nkr._guideline import Guideline, Lang
from nkr._i18n import t
from nkr._render import grade_in_words
from nkr.cdshooks._texts import texts
from nkr.fhir._mapping import DraftOrder, FhirCase

# nkr's own code systems for card topics and override reasons: local URNs, as for the value sets.
TOPIC_SYSTEM = "urn:nkr:cds-card-topic"
OVERRIDE_REASON_SYSTEM = "urn:nkr:cds-override-reason"

OVERVIEW = "overview"
SAFETY = "safety"
SURGEON = "spine-surgeon-assessment"

Card = dict[str, Any]
# Called with the recommendation id, or None for the quick guide.
PageUrl = Callable[[str | None], str]


@dataclass(frozen=True, slots=True)
class Rendered:
    cards: list[Card]
    # (card uuid, topic) for each card, for feedback statistics.
    issued: list[tuple[str, str]]


_MD_SPECIAL = re.compile(r"[\\`*_\[\]<>#|]")


def _backslashed(match: re.Match[str]) -> str:
    return "\\" + match[0]


def _md_escape(text: str) -> str:
    """Escape text that comes from the request (it may hold any characters) for markdown."""
    # A function, not a template: re would parse the template again on every call.
    return _MD_SPECIAL.sub(_backslashed, text)


# The first digit of a UUID's fourth group is 8, 9, a or b (the RFC 9562 variant).
_VARIANT_DIGIT = "89ab" * 4


class Uuids:
    """Version 7 UUIDs (RFC 9562) for the cards of one call: 48 bits of Unix time in
    milliseconds, then 74 random bits. The time is read once, and random bytes are drawn for
    a few UUIDs at a time (one system call rather than one per UUID).

    Card UUIDs are time-ordered so that the feedback store's index of issued cards grows at
    its end: random UUIDs land all over it, and recording a card gets dearer as it grows."""

    __slots__ = ("head", "pool")

    def __init__(self) -> None:
        stamp = f"{time.time_ns() // 1_000_000:012x}"
        self.head = f"{stamp[:8]}-{stamp[8:]}-7"
        self.pool = ""

    def next(self) -> str:
        if len(self.pool) < 19:
            self.pool = os.urandom(40).hex()  # 80 hex digits: four UUIDs' worth
        r, self.pool = self.pool[:19], self.pool[19:]
        return f"{self.head}{r[:3]}-{_VARIANT_DIGIT[int(r[3], 16)]}{r[4:7]}-{r[7:19]}"


def _fit(summary: str) -> str:
    # The spec asks for fewer than 140 characters; the data is written to fit, this is a guard.
    return summary if len(summary) < 140 else summary[:138] + "…"


P = ParamSpec("P")
R = TypeVar("R")


def _per_guideline(
    fn: Callable[Concatenate[Guideline, P], R],
) -> Callable[Concatenate[Guideline, P], R]:
    """Cache by guideline identity (a Guideline holds dicts, so it cannot be hashed)."""
    store: dict[tuple[object, ...], tuple[Guideline, R]] = {}

    def cached(g: Guideline, /, *args: P.args, **kwargs: P.kwargs) -> R:
        key = (id(g), *args, *sorted(kwargs.items())) if kwargs else (id(g), *args)
        hit = store.get(key)
        if hit is None:
            # Keeping the guideline alive keeps its id from being reused.
            hit = store[key] = (g, fn(g, *args, **kwargs))
        return hit[1]

    return cached


@_per_guideline
def _tag(g: Guideline, lang: Lang) -> str:
    return texts()("card.tag-in-force" if g.status.in_force else "card.tag-not-in-force", lang)


@_per_guideline
def _source_label(g: Guideline, lang: Lang) -> str:
    tx = texts()
    status = tx("card.status-in-force" if g.status.in_force else "card.status-not-in-force", lang)
    return tx(
        "card.source-label",
        lang,
        publisher=g.publisher,
        short_title=g.short_title(lang),
        version=g.version,
        status=status,
    )


def topic_display(g: Guideline, topic: str, lang: Lang) -> str:
    """A card topic's name for people: the card's own for the overview and the safety notice,
    the recommendation's short label for the others."""
    if topic == OVERVIEW:
        return texts()("overview.topic", lang)
    if topic == SAFETY:
        return texts()("safety.topic", lang)
    return g.recommendation(topic).label(lang)


@_per_guideline
def _source(g: Guideline, topic: str, lang: Lang) -> dict[str, Any]:
    coding = {"system": TOPIC_SYSTEM, "code": topic, "display": topic_display(g, topic, lang)}
    if topic == SAFETY:
        # The safety check is general Danish practice, not the guideline's: its source says so,
        # and points at no NKR page (no url: the spec allows it, and no stable one is known).
        return {"label": texts()("safety.source-label", lang), "topic": coding}
    return {"label": _source_label(g, lang), "url": g.source.url, "topic": coding}


@cache
def _override_reasons(topic: str, lang: Lang) -> list[dict[str, str]]:
    tx = texts()
    return [
        {
            "system": OVERRIDE_REASON_SYSTEM,
            "code": code,
            "display": tx(f"override-reasons.{code}", lang),
        }
        for code in tx.override_reasons_by_topic.get(topic, ())
    ]


@_per_guideline
def _recommendation_block(g: Guideline, rec_id: str, lang: Lang) -> str:
    """The recommendation as the card quotes it: its short name, grade, exact wording."""
    tx = texts()
    rec = g.recommendation(rec_id)
    heading = rec.label(lang)
    # Separators, not brackets: the grade in words may hold brackets of its own.
    return (
        f"**{heading}** · **{rec.symbols}** · {grade_in_words(g, rec.id, lang)}\n\n"
        f"> {rec.wording(lang)}\n>\n> — *{tx('card.quote-attribution', lang)}*"
    )


@_per_guideline
def _footer(g: Guideline, topic: str, lang: Lang, pain_threshold: int) -> str:
    """The software's assumptions for this topic and the guideline's status."""
    tx = texts()
    parts: list[str] = []
    wanted = tx.assumptions_by_topic.get(topic, ())
    chosen = [a for a in g.assumptions if a.id in wanted]
    if chosen:
        items = "\n".join(f"- {a.text(lang).format(pain_threshold=pain_threshold)}" for a in chosen)
        parts.append(f"**{tx('card.assumptions', lang)}:**\n\n{items}")
    parts.append(f"**{tx('card.status', lang)}:** {g.status.text(lang)}")
    return "\n\n".join(parts)


@_per_guideline
def _overview_block(
    g: Guideline, listed: tuple[tuple[str, RecStatus], ...], lang: Lang
) -> tuple[str, str]:
    """The recommendations that apply, with their exact wording; and their strength symbols
    counted for the summary."""
    tx = texts()
    lines = []
    for rec_id, status in listed:
        rec = g.recommendation(rec_id)
        line = f"- **{rec.symbols}** {rec.wording(lang)}"
        if status is not RecStatus.APPLIES:
            line += f" *({t(f'status-{status}', lang)})*"
        lines.append(line)
    # A dash, not brackets: the English attribution holds brackets of its own.
    heading = f"**{tx('overview.heading', lang)}** – *{tx('card.quote-attribution', lang)}*:"
    counts = Counter(g.recommendation(rec_id).strength_symbol for rec_id, _ in listed)
    symbols = ", ".join(f"{symbol}×{n}" for symbol, n in counts.items())
    return heading + "\n\n" + "\n".join(lines), symbols


@dataclass(frozen=True, slots=True)
class _Frame:
    """Every text of the cards that depends only on the guideline, the language and the pain
    threshold, rendered once: a call fills in only what is about the patient."""

    # Every text of messages.toml in the language, by its dotted key.
    text: dict[str, str]
    tag: str
    why: str
    notes_heading: str
    referral_text: str
    link_guide: str
    link_recommendation: str
    # Per card topic (overview, safety, or a recommendation id).
    sources: dict[str, dict[str, Any]]
    override_reasons: dict[str, list[dict[str, str]]]
    footers: dict[str, str]
    # Per recommendation id.
    blocks: dict[str, str]


@_per_guideline
def _frame(g: Guideline, lang: Lang, pain_threshold: int) -> _Frame:
    tx = texts()
    topics = (OVERVIEW, SAFETY, *(r.id for r in g.recommendations))
    return _Frame(
        text={key: text(lang) for key, text in tx.texts.items()},
        tag=_tag(g, lang),
        referral_text=g.label("planned", "spine_surgeon_referral", lang),
        why=f"**{tx('card.why', lang)}:** ",
        notes_heading=f"**{tx('card.data-notes', lang)}:**\n\n",
        link_guide=tx("card.link-guide", lang),
        link_recommendation=tx("card.link-recommendation", lang),
        sources={topic: _source(g, topic, lang) for topic in topics},
        override_reasons={topic: _override_reasons(topic, lang) for topic in topics},
        footers={topic: _footer(g, topic, lang, pain_threshold) for topic in topics},
        blocks={r.id: _recommendation_block(g, r.id, lang) for r in g.recommendations},
    )


def _detail(*parts: str) -> str:
    return "\n\n".join([p for p in parts if p])


class CardRenderer:
    """Renders the cards of one hook call; holds what every card of the call shares."""

    def __init__(
        self,
        *,
        assessment: Assessment,
        fhir_case: FhirCase,
        lang: Lang,
        page_url: PageUrl,
        pain_threshold: int,
        referral_codings: tuple[dict[str, str], ...],
    ) -> None:
        self.a = assessment
        self.g = assessment.guideline
        self.fhir_case = fhir_case
        self.lang = lang
        self.page_url = page_url
        self.pain_threshold = pain_threshold
        self.referral_codings = referral_codings
        self.frame = _frame(self.g, lang, pain_threshold)
        self.cards: list[Card] = []
        self.issued: list[tuple[str, str]] = []
        self._notes_text: str | None = None
        self.uuids = Uuids()

    @property
    def notes(self) -> str:
        """The FHIR reading notes, the same on every card of the call (rendered once)."""
        if self._notes_text is None:
            notes = self.fhir_case.notes
            lang = self.lang
            self._notes_text = (
                self.frame.notes_heading + "\n".join([f"- {_md_escape(n(lang))}" for n in notes])
                if notes
                else ""
            )
        return self._notes_text

    def rendered(self) -> Rendered:
        return Rendered(self.cards, self.issued)

    def _link(self, rec_id: str | None) -> list[dict[str, str]]:
        f = self.frame
        label = f.link_guide if rec_id is None else f.link_recommendation
        return [{"label": label, "url": self.page_url(rec_id), "type": "absolute"}]

    def _add(
        self,
        *,
        topic: str,
        indicator: str,
        summary: str,
        detail: str,
        link_to: str | None,
        suggestions: list[dict[str, Any]] | None = None,
    ) -> None:
        card_id = self.uuids.next()
        card: Card = {
            "uuid": card_id,
            "summary": _fit(summary),
            "detail": detail,
            "indicator": indicator,
            "source": self.frame.sources[topic],
        }
        if suggestions:
            card["suggestions"] = suggestions
            card["selectionBehavior"] = "at-most-one"
        card["overrideReasons"] = self.frame.override_reasons[topic]
        card["links"] = self._link(link_to)
        self.cards.append(card)
        self.issued.append((card_id, topic))

    # -- patient-view ----------------------------------------------------------------------

    def overview(self) -> None:
        """Week N of 12 and the recommendations that apply now."""
        a, g, lang, f = self.a, self.g, self.lang, self.frame
        listed: list[tuple[str, RecStatus]] = []
        why: Reason | None = None
        for r in a.results:
            status = r.status
            if status is RecStatus.NOT_APPLICABLE or status is RecStatus.DONE:
                continue
            rec_id = r.recommendation.id
            if rec_id != SURGEON:
                listed.append((rec_id, status))
                if why is None and status is RecStatus.APPLIES:
                    why = r.reason
        block, symbols = _overview_block(g, tuple(listed), lang)
        week_text = a.week_text(lang)
        summary = f.text["overview.summary"].format(
            week_text=week_text, count=len(listed), symbols=symbols, tag=f.tag
        )
        onset = a.date - dt.timedelta(days=a.days_since_onset)
        week = f.text["overview.week"].format(
            week_text=week_text, days=a.days_since_onset, onset=onset.isoformat()
        )
        # The spine-surgeon date as the engine words it: for a patient in scope, the condition
        # it is ("if severe and disabling pain persists ..."), or due when it is.
        deadline = a.spine_surgeon_deadline
        if deadline is not None:
            week += " " + deadline.text(g, lang)
        detail = _detail(
            week,
            block,
            "" if why is None else f.why + why.text(g, lang),
            self.notes,
            f.footers[OVERVIEW],
        )
        self._add(topic=OVERVIEW, indicator="info", summary=summary, detail=detail, link_to=None)

    def spine_surgeon(
        self, result: RecommendationResult, patient_ref: str, encounter: str | None
    ) -> None:
        """Assessment by a spine surgeon is due or overdue: a referral suggestion."""
        a, g, lang, f = self.a, self.g, self.lang, self.frame
        rec = result.recommendation
        key = "surgeon.summary-due" if result.status is RecStatus.DUE else "surgeon.summary-overdue"
        due = a.spine_surgeon_due
        # The engine gives the date whenever the assessment is due or overdue.
        assert due is not None, "a due or overdue spine-surgeon assessment without its date"
        summary = f.text[key].format(symbols=rec.symbols, due=due.isoformat(), tag=f.tag)
        detail = _detail(
            f.blocks[rec.id],
            f.why + result.reason.text(g, lang),
            self.notes,
            f.footers[SURGEON],
        )
        resource: dict[str, Any] = {
            "resourceType": "ServiceRequest",
            "status": "draft",
            "intent": "order",
            "code": {
                "coding": list(self.referral_codings),
                "text": f.referral_text,
            },
            "subject": {"reference": patient_ref},
            "reasonCode": [{"text": f.text["surgeon.referral-reason"]}],
        }
        if encounter is not None:
            resource["encounter"] = {"reference": encounter}
        suggestion = {
            "label": f.text["surgeon.suggestion"],
            "uuid": self.uuids.next(),
            "isRecommended": True,
            "actions": [
                {"type": "create", "description": f.text["surgeon.action"], "resource": resource}
            ],
        }
        self._add(
            topic=SURGEON,
            indicator="warning",
            summary=summary,
            detail=detail,
            link_to=rec.id,
            suggestions=[suggestion],
        )

    def safety(self) -> None:
        """Red flags: outside the guideline, based on general Danish practice. Acute ones
        (cauda equina symptoms, severe or progressive paresis) are critical: acute referral."""
        a, g, lang, tx = self.a, self.g, self.lang, texts()
        notice = a.safety
        assert notice is not None
        labels = [g.label("red_flags", f, lang) for f in notice.red_flags]
        kind = "acute" if notice.acute else "non-acute"
        summary = tx(f"safety.summary-{kind}", lang, flags=", ".join(labels))
        if len(summary) >= 140:
            summary = tx(f"safety.summary-{kind}-short", lang, count=len(labels))
        flags = "\n".join(f"- {label}" for label in labels)
        detail = _detail(
            f"**{g.message('safety-title', lang)}**",
            f"**{notice.reason.text(g, lang)}**",
            tx("safety.action-acute", lang) if notice.acute else "",
            f"**{tx('safety.flags', lang)}:**\n\n{flags}",
            tx("safety.outside", lang),
            self.notes,
            self.frame.footers[SAFETY],
        )
        indicator = "critical" if notice.acute else "warning"
        self._add(topic=SAFETY, indicator=indicator, summary=summary, detail=detail, link_to=None)

    # -- order-select / order-sign ---------------------------------------------------------

    def planned_caution(self, result: RecommendationResult) -> None:
        """A draft order the guideline advises caution about: a suggestion to remove it."""
        g, lang, tx, f = self.g, self.lang, texts(), self.frame
        rec = result.recommendation
        intervention = _planned_intervention(result)
        drafts = [d for d in self.fhir_case.draft_orders if d.intervention == intervention]
        key = f"order.summary.{rec.id}"
        tag = f.tag
        if tx.has(key):
            summary = tx(key, lang, symbols=rec.symbols, tag=tag)
        else:
            heading = topic_display(g, rec.id, lang)
            summary = tx(
                "order.fallback-summary", lang, symbols=rec.symbols, heading=heading, tag=tag
            )
        label = g.label("planned", intervention, lang) if intervention else rec.id
        references = [_reference(d) for d in drafts]
        actions = [
            {
                "type": "delete",
                "description": tx("order.action", lang, reference=ref),
                "resourceId": ref,
            }
            for ref in references
            if ref is not None
        ]
        suggestions = (
            [
                {
                    "label": tx("order.suggestion", lang, intervention=label),
                    "uuid": self.uuids.next(),
                    # The guideline advises caution (a weak recommendation against, or not
                    # good practice routinely), not removal: the choice stays the clinician's.
                    "isRecommended": False,
                    "actions": actions,
                }
            ]
            if actions
            else []
        )
        detail = _detail(
            f.blocks[rec.id],
            f.why + result.reason.text(g, lang),
            "" if actions or not drafts else tx("order.no-reference", lang),
            self.notes,
            f.footers[rec.id],
        )
        self._add(
            topic=rec.id,
            indicator="warning",
            summary=summary,
            detail=detail,
            link_to=rec.id,
            suggestions=suggestions,
        )


def _planned_intervention(result: RecommendationResult) -> str | None:
    """The planned intervention the engine named as the reason for caution."""
    for name, value in result.reason.params:
        if name == "intervention" and isinstance(value, Term):
            return value.code
    return None


def _reference(draft: DraftOrder) -> str | None:
    if not draft.resource_id:
        return None
    return f"{draft.resource_type}/{draft.resource_id}"


def render(
    hook: str,
    *,
    assessment: Assessment,
    fhir_case: FhirCase,
    lang: Lang,
    page_url: PageUrl,
    pain_threshold: int,
    patient_ref: str,
    encounter: str | None,
    referral_codings: tuple[dict[str, str], ...],
) -> Rendered:
    """The cards for ``hook`` from the engine's assessment."""
    r = CardRenderer(
        assessment=assessment,
        fhir_case=fhir_case,
        lang=lang,
        page_url=page_url,
        pain_threshold=pain_threshold,
        referral_codings=referral_codings,
    )
    a = assessment
    if a.safety is not None:
        r.safety()
    if hook == "patient-view":
        if a.safety is None and a.in_scope:
            r.overview()
        surgeon = a.result(SURGEON)
        if surgeon.status in (RecStatus.DUE, RecStatus.OVERDUE):
            r.spine_surgeon(surgeon, patient_ref, encounter)
    else:
        for result in a.results:
            if result.status is RecStatus.CAUTION:
                r.planned_caution(result)
    return r.rendered()
