"""The rule book: each guideline's own rules, one per recommendation, checked against its
content."""

from __future__ import annotations

import pytest

from nkr import InputError, Reason, RecStatus
from nkr._assessment import Outcome
from nkr._rules import RuleBook
from nkr.guidelines.lumbar_radiculopathy import GUIDELINE_FILE, guideline
from nkr.guidelines.lumbar_radiculopathy.rules import RULES

G = guideline()
APPLIES = Outcome(RecStatus.APPLIES, Reason("in-scope"))


def full_book(name: str = "test") -> RuleBook[str]:
    book: RuleBook[str] = RuleBook(name)
    for rec in G.recommendations:
        book.rule(rec.id)(lambda ctx: Outcome(RecStatus.CAUTION, Reason(ctx)))
    return book


def test_the_lumbar_rules_cover_their_guideline_one_to_one() -> None:
    assert RULES.ids == frozenset(G.by_id)
    assert RULES.check(G, GUIDELINE_FILE) is G


def test_a_second_rule_for_a_recommendation_is_refused() -> None:
    book: RuleBook[None] = RuleBook("test")
    book.rule("mri")(lambda ctx: APPLIES)
    with pytest.raises(ValueError, match=r"test: a second rule for recommendation 'mri'"):
        book.rule("mri")(lambda ctx: APPLIES)


def test_a_book_that_differs_from_the_content_names_both_sides() -> None:
    book: RuleBook[None] = RuleBook("test")
    book.rule("mri")(lambda ctx: APPLIES)
    book.rule("dry-needling")(lambda ctx: APPLIES)
    with pytest.raises(InputError) as raised:
        book.check(G, "guideline.toml")
    missing = sorted(set(G.by_id) - {"mri"})
    assert str(raised.value) == (
        f"guideline.toml: recommendations and rules differ: without a rule: {missing}, "
        "rules without a recommendation: ['dry-needling']"
    )


def test_apply_gives_each_recommendation_its_rules_outcome_in_order() -> None:
    results = full_book().apply(G, "context-key")
    assert [r.recommendation.id for r in results] == [r.id for r in G.recommendations]
    assert {(r.status, r.reason.key) for r in results} == {(RecStatus.CAUTION, "context-key")}


def test_books_are_separate() -> None:
    one, two = full_book("one"), RuleBook[str]("two")
    assert "mri" in one
    assert "mri" not in two
