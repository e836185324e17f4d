"""The fictional rules, one per recommendation, in a rule book of their own (tests only)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from nkr import (
    Assessment,
    Deadline,
    Fact,
    Guideline,
    InputError,
    Notice,
    Outcome,
    Reason,
    RecStatus,
    RuleBook,
    Term,
)
from nkr_fictional_guideline.case import FictionalCase

FOLLOW_UP = "fiktiv-opfoelgning"
FOLLOW_UP_DAYS = 14
HIGH_SCORE = 7


@dataclass(frozen=True, slots=True)
class Context:
    case: FictionalCase
    on: dt.date
    in_scope: bool
    applies: Outcome
    due: dt.date


RULES: RuleBook[Context] = RuleBook("test-fiktiv-retningslinje")


@RULES.rule("fiktiv-samtale")
def talk(ctx: Context) -> Outcome:
    return ctx.applies


@RULES.rule("fiktiv-pille")
def pill(ctx: Context) -> Outcome:
    if ctx.in_scope and "fiktiv_pille" in ctx.case.planned:
        term = Term("planned", "fiktiv_pille")
        return Outcome(RecStatus.CAUTION, Reason("planned", (("intervention", term),)), term)
    return ctx.applies


@RULES.rule(FOLLOW_UP)
def follow_up(ctx: Context) -> Outcome:
    if not ctx.in_scope:
        return ctx.applies
    if ctx.case.score < HIGH_SCORE:
        return Outcome(RecStatus.NOT_APPLICABLE, Reason("follow-up-low-score"))
    if ctx.case.followed_up:
        return Outcome(RecStatus.DONE, Reason("follow-up-done"))
    due = (("due_date", ctx.due),)
    if ctx.on <= ctx.due:
        return Outcome(RecStatus.DUE, Reason("follow-up-due", due))
    return Outcome(RecStatus.OVERDUE, Reason("follow-up-overdue", due))


def evaluate(case: FictionalCase, guideline: Guideline, on: dt.date) -> Assessment:
    if case.first_visit > on:
        raise InputError("first_visit", f"{case.first_visit} is after the assessment date {on}")
    scope_reasons: tuple[Reason, ...] = ()
    if case.age < guideline.scope.min_age_years:
        scope_reasons = (Reason("scope-under-18", (("age", case.age),)),)
    in_scope = not scope_reasons
    applies = (
        Outcome(RecStatus.APPLIES, Reason("in-scope"))
        if in_scope
        else Outcome(
            RecStatus.NOT_APPLICABLE, Reason("out-of-scope", (("reasons", scope_reasons),))
        )
    )
    due = case.first_visit + dt.timedelta(days=FOLLOW_UP_DAYS)
    results = RULES.apply(guideline, Context(case, on, in_scope, applies, due))
    follow = next(r for r in results if r.recommendation.id == FOLLOW_UP)
    deadlines: tuple[Deadline, ...] = ()
    if follow.status is RecStatus.DUE:
        deadlines = (Deadline(FOLLOW_UP, due, "due", follow.reason),)
    elif follow.status is RecStatus.OVERDUE:
        deadlines = (Deadline(FOLLOW_UP, due, "overdue", follow.reason),)
    notices = (
        (Notice("alarm", True, Reason("alarm-title"), Reason("alarm-text")),)
        if case.score == 10
        else ()
    )
    return Assessment(
        guideline=guideline,
        date=on,
        in_scope=in_scope,
        scope_reasons=scope_reasons,
        results=results,
        facts=(
            Fact(
                "score", Reason("fact-score"), Reason("fact-score-value", (("score", case.score),))
            ),
        ),
        notices=notices,
        deadlines=deadlines,
    )
