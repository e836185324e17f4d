"""Every case of the table (tests/cases/*.toml) through every interface: the engine, the
command line, the web app's form and the CDS Hooks services must show the same."""

from __future__ import annotations

from pathlib import Path

import pytest

from nkr._package import registry
from tests.cases.runners import CdsHooksRunner, CliRunner, EngineRunner, Runner, WebFormRunner
from tests.cases.table import CASES, TableCase, check

pytestmark = pytest.mark.usefixtures("fictional")


@pytest.fixture(params=["engine", "cli", "web-form", "cds-hooks"])
def runner(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Runner:
    runners: dict[str, Runner] = {
        "engine": EngineRunner(),
        "cli": CliRunner(),
        "web-form": WebFormRunner(monkeypatch),
        "cds-hooks": CdsHooksRunner(monkeypatch),
    }
    return runners[request.param]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id)
def test_case(
    case: TableCase, runner: Runner, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    rec_ids = [r.id for r in registry().get(case.guideline).content.recommendations]
    check(case, runner.observe(case, tmp_path, capsys), rec_ids)


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
