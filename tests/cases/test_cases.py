"""Every case of the table (tests/cases/*.toml) through every interface: the engine, the
command line, the web app's form and the CDS Hooks services must show the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from nkr._package import registry
from tests.cases.runners import (
    ApplyRunner,
    CdsHooksRunner,
    CliRunner,
    EngineRunner,
    Runner,
    WebFormRunner,
)
from tests.cases.table import APPLY_NOW, CASES, TableCase, check

pytestmark = pytest.mark.usefixtures("fictional")


RUNNERS = ("engine", "cli", "web-form", "cds-hooks", "fhir-apply")
FHIR_RUNNERS = ("cds-hooks", "fhir-apply")
# Every case through every runner; through CDS Hooks and $apply only the cases that FHIR can
# say (a case
# without `cards` in the table, such as one without any sign of root involvement, has no FHIR
# form: the guideline reads a coded diagnosis as a sign).
PAIRS = [
    pytest.param(case, name, id=f"{name}-{case.id}")
    for case in CASES
    for name in RUNNERS
    if not (name in FHIR_RUNNERS and case.cards is None)
]


def _runner(name: str, monkeypatch: pytest.MonkeyPatch) -> Runner:
    runners: dict[str, Runner] = {
        "engine": EngineRunner(),
        "cli": CliRunner(),
        "web-form": WebFormRunner(monkeypatch),
        "cds-hooks": CdsHooksRunner(monkeypatch),
        "fhir-apply": ApplyRunner(monkeypatch),
    }
    return runners[name]


@pytest.mark.parametrize(("case", "runner_name"), PAIRS)
def test_case(
    case: TableCase,
    runner_name: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rec_ids = [r.id for r in registry().get(case.guideline).content.recommendations]
    check(case, _runner(runner_name, monkeypatch).observe(case, tmp_path, capsys), rec_ids)


def test_nearly_every_case_also_runs_through_cds_hooks() -> None:
    without = [c.id for c in CASES if c.cards is None]
    assert len(without) <= 2, without


def test_the_table_covers_every_status_and_deadline_kind() -> None:
    statuses = {s for c in CASES for s in [*c.statuses.values(), c.others]}
    assert statuses == {"applies", "caution", "due", "overdue", "done", "not-applicable"}
    kinds = {d["kind"] for c in CASES for d in c.deadlines}
    assert kinds == {"if", "due", "overdue", "done"}
    assert {c.guideline for c in CASES} == {"nkr-lumbal-radikulopati", "test-fiktiv-retningslinje"}


def test_the_spine_surgeon_date_has_at_least_fifteen_vignettes() -> None:
    surgeon = [
        c
        for c in CASES
        if c.guideline == "nkr-lumbal-radikulopati"
        and (
            c.absent or any(d["recommendation"] == "spine-surgeon-assessment" for d in c.deadlines)
        )
    ]
    assert len(surgeon) >= 15
    assert {d["kind"] for c in surgeon for d in c.deadlines} == {"if", "due", "overdue", "done"}
    assert any(not c.deadlines for c in surgeon)


@pytest.mark.parametrize("case", [c for c in CASES if c.cards], ids=lambda c: c.id)
def test_apply_cards_and_evaluate_agree_on_what_applies_and_what_carries_a_caution(
    case: TableCase,
) -> None:
    """The table the runners hold every interface to says the same thing three ways: the
    statuses (nkr evaluate), the order hooks' caution cards (CDS Hooks) and, through
    APPLY_NOW, the RequestGroup of $apply; here they must agree with one another."""
    rec_ids = [r.id for r in registry().get(case.guideline).content.recommendations]
    statuses = case.expected_statuses(rec_ids)
    cautions = {r for r, s in statuses.items() if s == "caution"}
    assert cautions <= {r for r, s in statuses.items() if s in APPLY_NOW}
    assert case.cards is not None
    for hook in ("order-select", "order-sign"):
        if hook in case.cards:
            carded = {t.partition(":")[0] for t in case.cards[hook]} & set(rec_ids)
            assert carded == cautions, hook
