"""The table of cases (tests/cases/) through the population audit: each case that FHIR can say
becomes a small Bulk Data export of one patient; the audit's episode is assessed on its date A
(the start plus the guideline's scope length), so its scope and statuses must be exactly what
``nkr evaluate`` says for the same patient on A, and what the CDS Hooks service shows for the
same resources on A (its patient-view cards: a card on a recommendation exactly where that
recommendation is due or overdue, the overview exactly in scope, a safety card exactly for a
red flag)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from nkr._cli import main
from nkr._package import registry
from tests.cases import fhir
from tests.cases.runners import _at, _client
from tests.cases.table import CASES, TableCase

pytestmark = pytest.mark.usefixtures("fictional")

FHIR_CASES = [pytest.param(c, id=c.id) for c in CASES if c.cards is not None]


def _resources(case: TableCase) -> list[dict[str, Any]]:
    prefetch, _drafts = fhir.PREFETCH[case.guideline](case)
    found: list[dict[str, Any]] = []
    for value in prefetch.values():
        if value["resourceType"] == "Bundle":
            found.extend(e["resource"] for e in value.get("entry", []))
        else:
            found.append(value)
    return found


def _export(resources: list[dict[str, Any]], folder: Path) -> None:
    folder.mkdir()
    by_type: dict[str, list[bytes]] = {}
    for r in resources:
        by_type.setdefault(r["resourceType"], []).append(orjson.dumps(r))
    for kind, lines in by_type.items():
        (folder / f"{kind}.ndjson").write_bytes(b"\n".join(lines) + b"\n")


def _day_a(case: TableCase) -> dt.date:
    c = case.case
    start = c["symptom_onset"] if "symptom_onset" in c else c["first_visit"]
    scope = registry().get(case.guideline).content.scope.max_symptom_days
    return dt.date.fromisoformat(str(start)) + dt.timedelta(days=scope)


def _years(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _case_on(case: TableCase, on: dt.date) -> dict[str, Any]:
    """The table's patient as the export says it on ``on``: the birth date the export gives,
    the coded diagnosis as the one sign, a pain score dated after ``on`` not yet known, and no
    planned orders (an export has no draft orders)."""
    c = dict(case.case)
    born = dt.date.fromisoformat(fhir._birth_date(case))
    c.pop("planned", None)
    if case.guideline == "test-fiktiv-retningslinje":
        c["age"] = _years(born, on)
        return c
    c.pop("age", None)
    c.pop("mri_confirmed", None)
    c["birth_date"] = born.isoformat()
    c["signs"] = ["radicular_leg_pain"]
    if case.date - dt.timedelta(days=1) > on:
        c["severe_disabling_pain"] = False
    return c


def _known_on(resources: list[dict[str, Any]], on: dt.date) -> list[dict[str, Any]]:
    """The resources dated on or before ``on`` (the cases date only their Conditions and
    Observations), and the undated ones."""

    def day(r: dict[str, Any]) -> str | None:
        value = r.get("onsetDateTime") or r.get("effectiveDateTime")
        return None if value is None else str(value)[:10]

    return [r for r in resources if (d := day(r)) is None or d <= on.isoformat()]


def _cds_cards(
    case: TableCase,
    resources: list[dict[str, Any]],
    on: dt.date,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> list[str]:
    package = registry().get(case.guideline)
    body = fhir.hook_request(case, "patient-view")
    for value in body["prefetch"].values():
        if value["resourceType"] == "Bundle":
            value["entry"] = [e for e in value["entry"] if e["resource"] in resources]
    _at(on, monkeypatch)
    service = next(s.id for s in package.services if s.hook == "patient-view")

    async def call() -> list[str]:
        async with _client({}, tmp_path) as client:
            response = await client.post(f"/cds-services/{service}", json=body)
            assert response.status_code == 200, response.text[:500]
            return [
                f"{c['source']['topic']['code']}:{c['indicator']}" for c in response.json()["cards"]
            ]

    return asyncio.run(call())


@pytest.mark.parametrize("case", FHIR_CASES)
def test_the_audit_judges_each_case_as_evaluate_and_the_cards_do_on_day_a(
    case: TableCase,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    on = _day_a(case)
    resources = _resources(case)
    _export(resources, tmp_path / "export")
    out = tmp_path / "out"
    args = ["--guideline", case.guideline, "--workers", "0", "--min-cell", "0"]
    assert main(["audit", str(tmp_path / "export"), "--out", str(out), *args]) == 0
    rows = pq.read_table(out / "episodes.parquet").to_pylist()
    if case.guideline == "nkr-lumbal-radikulopati" and not case.case.get("signs"):
        # No coded diagnosis: no episode, a patient without one.
        assert rows == []
        assert json.loads((out / "summary.json").read_text())["patients_without_episode"] == 1
        return
    assert len(rows) == 1
    episode = rows[0]
    assert episode["patient"] == "Patient/p1"
    assert episode["assessed_on"] == on

    # nkr evaluate, on A, for the patient as the export says it on A.
    (tmp_path / "case.json").write_text(json.dumps(_case_on(case, on)), encoding="utf-8")
    capsys.readouterr()
    assert (
        main(
            [
                "evaluate",
                str(tmp_path / "case.json"),
                "--guideline",
                case.guideline,
                "--date",
                on.isoformat(),
                "--format",
                "json",
            ]
        )
        == 0
    )
    evaluated = json.loads(capsys.readouterr().out)
    assert episode["in_scope"] is evaluated["in_scope"]
    assert dict(episode["statuses"]) == {r["id"]: r["status"] for r in evaluated["recommendations"]}
    assert (episode["exclusion"] is None) is evaluated["in_scope"]

    # The CDS Hooks service, on A, for the resources known on A.
    cards = _cds_cards(case, _known_on(resources, on), on, tmp_path, monkeypatch)
    statuses = dict(episode["statuses"])
    topics = [c.split(":")[0] for c in cards]
    for rec_id, status in statuses.items():
        assert (rec_id in topics) is (status in ("due", "overdue")), (rec_id, status, cards)
    if case.guideline == "nkr-lumbal-radikulopati":
        assert ("overview" in topics) is episode["in_scope"]
        assert ("safety" in topics) is (episode["exclusion"] == "red-flag")
