"""The guideline's CDS Hooks services and card rules: which cards an assessment gives.

Nothing here decides anything clinical: which recommendation needs attention, and why, comes
from the assessment (:mod:`.rules`); the wording, grades and reasons from the guideline's data;
the words around them from ``texts.toml``; the card frame from :class:`nkr.cdshooks._kit.CardKit`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from nkr._assessment import Assessment, Notice, RecommendationResult, RecStatus, Term
from nkr._guideline import Lang, Localized
from nkr._package import ServiceSpec
from nkr.guidelines.lumbar_radiculopathy.rules import SURGEON, Course

if TYPE_CHECKING:
    from nkr.cdshooks._kit import CardKit
    from nkr.fhir._valuesets import ValueSets
    from nkr.guidelines.lumbar_radiculopathy import LumbarRadiculopathy

SERVICE_PREFIX = "nkr-lumbal-radikulopati"
HOOKS: tuple[str, ...] = ("patient-view", "order-select", "order-sign")

# The card topics of this guideline besides its recommendations' ids.
OVERVIEW = "overview"
SAFETY = "safety"
# What a suggested referral is, in the case vocabulary.
REFERRAL = Term("planned", "spine_surgeon_referral")


def services(package: LumbarRadiculopathy) -> tuple[ServiceSpec, ...]:
    tx = package.texts

    def localized(key: str) -> Localized:
        return Localized(da=tx(key, "da"), en=tx(key, "en"))

    return tuple(
        ServiceSpec(
            f"{SERVICE_PREFIX}-{hook}",
            hook,
            localized(f"services.{hook}.title"),
            localized(f"services.{hook}.description"),
        )
        for hook in HOOKS
    )


def topic_label(package: LumbarRadiculopathy, topic: str, lang: Lang) -> str | None:
    """A card topic's name for people: the card's own for the overview and the safety notice,
    the recommendation's short label for the others."""
    if topic in (OVERVIEW, SAFETY):
        return package.texts(f"{topic}.topic", lang)
    rec = package.content.by_id.get(topic)
    return None if rec is None else rec.label(lang)


def cards(package: LumbarRadiculopathy, hook: str, assessment: Assessment, kit: CardKit) -> None:
    """A red-flag notice first; on patient-view the overview (in scope, no notice) and the
    spine-surgeon referral when it is due or overdue; on the order hooks a caution card for
    each draft order a recommendation advises caution about."""
    a = assessment
    for notice in a.notices:
        _safety(notice, kit)
    if hook == "patient-view":
        if not a.notices and a.in_scope:
            _overview(a, kit)
        surgeon = a.result(SURGEON)
        if surgeon.status is RecStatus.DUE or surgeon.status is RecStatus.OVERDUE:
            _spine_surgeon(surgeon, kit, _referral_codings(package.valuesets))
    else:
        for result in a.results:
            if result.status is RecStatus.CAUTION:
                _caution(result, kit)


def _course(a: Assessment) -> Course:
    course = a.details
    assert isinstance(course, Course), "an assessment of another guideline"
    return course


def _overview(a: Assessment, kit: CardKit) -> None:
    """The week of the 12 and the recommendations that apply now."""
    course = _course(a)
    listed: list[tuple[str, RecStatus]] = []
    why = None
    for r in a.results:
        status = r.status
        if status is RecStatus.NOT_APPLICABLE or status is RecStatus.DONE:
            continue
        rec_id = r.recommendation.id
        if rec_id != SURGEON:
            listed.append((rec_id, status))
            if why is None and status is RecStatus.APPLIES:
                why = r.reason
    block, symbols = kit.recommendation_list(tuple(listed))
    week_text = course.week_text(kit.lang)
    summary = kit.text(
        "overview.summary", week_text=week_text, count=len(listed), symbols=symbols, tag=kit.tag
    )
    days = course.days_since_onset
    onset = a.date - dt.timedelta(days=days)
    week = kit.text("overview.week", week_text=week_text, days=days, onset=onset.isoformat())
    # The spine-surgeon date as the rules word it: for a patient in scope, the condition it is
    # ("if severe and disabling pain persists ..."), or due when it is.
    deadline = course.spine_surgeon
    if deadline is not None:
        week += " " + kit.reason(deadline.text)
    kit.add(
        topic=OVERVIEW,
        indicator="info",
        summary=summary,
        detail=kit.detail(
            week,
            block,
            "" if why is None else kit.why(why),
            kit.notes,
            kit.footer(OVERVIEW),
        ),
        link_to=None,
    )


# By value sets' identity (kept in the value, so that the id is never reused).
_CODINGS: dict[int, tuple[ValueSets, tuple[dict[str, str], ...]]] = {}


def _referral_codings(valuesets: ValueSets) -> tuple[dict[str, str], ...]:
    hit = _CODINGS.get(id(valuesets))
    if hit is None:
        hit = _CODINGS[id(valuesets)] = (valuesets, _referral_codings_of(valuesets))
    return hit[1]


def _referral_codings_of(valuesets: ValueSets) -> tuple[dict[str, str], ...]:
    """The code a suggested referral carries: a deployment's local codes when it has added
    some, else nkr's placeholder."""
    codes = valuesets.get("spine-surgeon-referral").codes
    local = [c for c in codes if c.provenance_kind == "local"]
    chosen = local[:1] or [c for c in codes if c.code == "spine-surgeon-referral"][:1] or codes[:1]
    return tuple(
        {"system": c.system, "code": c.code} | ({"display": c.display} if c.display else {})
        for c in chosen
    )


def _spine_surgeon(
    result: RecommendationResult, kit: CardKit, codings: tuple[dict[str, str], ...]
) -> None:
    """Assessment by a spine surgeon is due or overdue: a referral suggestion."""
    rec = result.recommendation
    key = "surgeon.summary-due" if result.status is RecStatus.DUE else "surgeon.summary-overdue"
    deadline = _course(kit.assessment).spine_surgeon
    # The rules give the date whenever the assessment is due or overdue.
    assert deadline is not None, "a due or overdue spine-surgeon assessment without its date"
    summary = kit.text(key, symbols=rec.symbols, due=deadline.date.isoformat(), tag=kit.tag)
    resource: dict[str, Any] = {
        "resourceType": "ServiceRequest",
        "status": "draft",
        "intent": "order",
        "code": {
            "coding": list(codings),
            "text": kit.label(REFERRAL),
        },
        "subject": {"reference": kit.patient},
        "reasonCode": [{"text": kit.text("surgeon.referral-reason")}],
    }
    if kit.encounter is not None:
        resource["encounter"] = {"reference": kit.encounter}
    suggestion = kit.suggestion(
        kit.text("surgeon.suggestion"),
        [kit.create(kit.text("surgeon.action"), resource)],
        recommended=True,
    )
    kit.add(
        topic=SURGEON,
        indicator="warning",
        summary=summary,
        detail=kit.detail(
            kit.block(rec.id), kit.why(result.reason), kit.notes, kit.footer(SURGEON)
        ),
        link_to=rec.id,
        suggestions=[suggestion],
    )


def _safety(notice: Notice, kit: CardKit) -> None:
    """Red flags: outside the guideline, based on general Danish practice. Acute ones
    (cauda equina symptoms, severe or progressive paresis) are critical: acute referral."""
    labels = [kit.label(item) for item in notice.items]
    kind = "acute" if notice.critical else "non-acute"
    summary = kit.text(f"safety.summary-{kind}", flags=", ".join(labels))
    if len(summary) >= 140:
        summary = kit.text(f"safety.summary-{kind}-short", count=len(labels))
    flags = "\n".join(f"- {label}" for label in labels)
    kit.add(
        topic=SAFETY,
        indicator="critical" if notice.critical else "warning",
        summary=summary,
        detail=kit.detail(
            f"**{kit.reason(notice.title)}**",
            f"**{kit.reason(notice.text)}**",
            kit.text("safety.action-acute") if notice.critical else "",
            f"**{kit.text('safety.flags')}:**\n\n{flags}",
            kit.text("safety.outside"),
            kit.notes,
            kit.footer(SAFETY),
        ),
        link_to=None,
    )


def _caution(result: RecommendationResult, kit: CardKit) -> None:
    """A draft order the guideline advises caution about: a suggestion to remove it."""
    rec = result.recommendation
    concerns = result.concerns
    drafts = [] if concerns is None else kit.drafts(concerns)
    key = f"order.summary.{rec.id}"
    if kit.has(key):
        summary = kit.text(key, symbols=rec.symbols, tag=kit.tag)
    else:
        heading = rec.label(kit.lang)
        summary = kit.text(
            "order.fallback-summary", symbols=rec.symbols, heading=heading, tag=kit.tag
        )
    label = rec.id if concerns is None else kit.label(concerns)
    actions = [
        kit.delete(kit.text("order.action", reference=ref), ref)
        for ref in (d.reference for d in drafts)
        if ref is not None
    ]
    # The guideline advises caution (a weak recommendation against, or not good practice
    # routinely), not removal: the choice stays the clinician's.
    suggestions = (
        [
            kit.suggestion(
                kit.text("order.suggestion", intervention=label), actions, recommended=False
            )
        ]
        if actions
        else []
    )
    kit.add(
        topic=rec.id,
        indicator="warning",
        summary=summary,
        detail=kit.detail(
            kit.block(rec.id),
            kit.why(result.reason),
            "" if actions or not drafts else kit.text("order.no-reference"),
            kit.notes,
            kit.footer(rec.id),
        ),
        link_to=rec.id,
        suggestions=suggestions,
    )
