"""The interfaces a case of the table runs through. Each runner turns a case into its
interface's input, runs it and reads back what it showed (:class:`~tests.cases.table.Observed`);
:func:`tests.cases.table.check` compares that with the table. Add a runner here (``$apply``, the
population audit) and every case runs through it too."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest

from nkr import Assessment
from nkr._cli import main
from nkr._package import registry
from tests._async import run_async
from tests.cases import fhir
from tests.cases.table import Observed, TableCase, form_fields


class Runner(Protocol):
    name: str

    def observe(
        self, case: TableCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> Observed:
        """What this interface shows for ``case`` (``pytest.skip`` where it cannot say)."""
        ...


def _from_json(data: Mapping[str, Any]) -> Observed:
    return Observed(
        in_scope=data["in_scope"],
        statuses={r["id"]: r["status"] for r in data["recommendations"]},
        deadlines=[
            {k: d[k] for k in ("recommendation", "date", "kind", "text")} for d in data["deadlines"]
        ],
        notices=[{"topic": n["topic"], "critical": n["critical"]} for n in data["notices"]],
    )


class EngineRunner:
    """The guideline package's ``parse_case`` and ``evaluate``, read from the Assessment."""

    name = "engine"

    def observe(
        self, case: TableCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> Observed:
        package = registry().get(case.guideline)
        a: Assessment = package.evaluate(package.parse_case(dict(case.case)), case.date)
        return Observed(
            in_scope=a.in_scope,
            statuses={r.recommendation.id: r.status.value for r in a.results},
            deadlines=[
                {
                    "recommendation": d.recommendation,
                    "date": d.date.isoformat(),
                    "kind": d.kind,
                    "text": a.text(d.text, "da"),
                }
                for d in a.deadlines
            ],
            notices=[{"topic": n.topic, "critical": n.critical} for n in a.notices],
            rendered=json.dumps([a.to_json("da"), a.to_json("en")], ensure_ascii=False),
        )


class CliRunner:
    """``nkr evaluate --guideline ID --format json``, and its text and summary for the
    table's ``absent``."""

    name = "cli"

    def observe(
        self, case: TableCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> Observed:
        path = tmp_path / "case.json"
        path.write_text(json.dumps(case.case), encoding="utf-8")
        args = [
            "evaluate",
            str(path),
            "--guideline",
            case.guideline,
            "--date",
            case.date.isoformat(),
        ]

        def run(*extra: str) -> str:
            assert main([*args, *extra]) == 0
            return capsys.readouterr().out

        seen = _from_json(json.loads(run("--format", "json")))
        seen.rendered = "\n".join(
            [run(), *(run("--format", "summary", "--lang", lang) for lang in ("da", "en"))]
        )
        return seen


def _client(env: Mapping[str, str], tmp_path: Path) -> httpx.AsyncClient:
    from nkr._app import create_app
    from nkr._settings import Settings

    settings = Settings.from_env({"NKR_DATA_DIR": str(tmp_path), **env})
    transport = httpx.ASGITransport(app=create_app(settings, registry()))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


def _at(day: dt.date, monkeypatch: pytest.MonkeyPatch) -> None:
    """The service's "today" is the case's date (CDS Hooks has no date of its own)."""
    import nkr._clock

    noon = dt.datetime(day.year, day.month, day.day, 11, 0, tzinfo=dt.UTC)
    monkeypatch.setattr(nkr._clock, "utc_now", lambda: noon)


_STATUS = re.compile(r'id="result-([a-z0-9-]+)" data-status="([a-z-]+)"')


class WebFormRunner:
    """The web app's assessment form, posted in-process: the status of each recommendation
    as the result page marks it, and the page as the rendered text."""

    name = "web-form"

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch

    def observe(
        self, case: TableCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> Observed:
        package = registry().get(case.guideline)
        # Under the guideline's slug; the default one's also at the address it had before
        # guidelines had slugs (issue 10), which must show the same.
        paths = [f"/{package.slug}/vurdering"]
        if package.id == registry().default_id:
            paths.append("/vurdering")

        async def post() -> list[httpx.Response]:
            async with _client({}, tmp_path) as client:
                return [await client.post(path, data=form_fields(case)) for path in paths]

        pages = []
        for response in run_async(post()):
            assert response.status_code == 200, response.text[:500]
            pages.append(response.text)
        statuses = [dict(_STATUS.findall(page)) for page in pages]
        assert all(s == statuses[0] for s in statuses), "the two addresses disagree"
        return Observed(statuses=statuses[0] or None, rendered=pages[0])


class CdsHooksRunner:
    """The guideline's CDS Hooks services, called in-process with the case as FHIR
    (:mod:`tests.cases.fhir`): the cards' topics and indicators per hook."""

    name = "cds-hooks"

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch

    def observe(
        self, case: TableCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> Observed:
        assert case.cards is not None, "a case without cards cannot go through CDS Hooks"
        package = registry().get(case.guideline)
        _at(case.date, self.monkeypatch)
        services = {s.hook: s.id for s in package.services}

        async def call() -> dict[str, tuple[str, ...]]:
            seen: dict[str, tuple[str, ...]] = {}
            async with _client({}, tmp_path) as client:
                for hook in case.cards or {}:
                    body = fhir.hook_request(case, hook)
                    response = await client.post(f"/cds-services/{services[hook]}", json=body)
                    assert response.status_code == 200, response.text[:500]
                    seen[hook] = tuple(
                        f"{c['source']['topic']['code']}:{c['indicator']}"
                        for c in response.json()["cards"]
                    )
            return seen

        return Observed(cards=run_async(call()))


class ApplyRunner:
    """``POST /fhir/PlanDefinition/<guideline id>/$apply`` (the pathway) in-process, with the
    case as FHIR (:func:`tests.cases.fhir.apply_parameters`): the recommendations in the
    RequestGroup and the status each action's code gives."""

    name = "fhir-apply"

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.monkeypatch = monkeypatch

    def observe(
        self, case: TableCase, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> Observed:
        _at(case.date, self.monkeypatch)
        body = json.dumps(fhir.apply_parameters(case))
        path = f"/fhir/PlanDefinition/{case.guideline}/$apply"

        async def call() -> httpx.Response:
            async with _client({}, tmp_path) as client:
                return await client.post(
                    path, content=body, headers={"content-type": "application/fhir+json"}
                )

        response = run_async(call())
        assert response.status_code == 200, response.text[:500]
        bundle = response.json()
        (group,) = [
            e["resource"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "RequestGroup"
        ]
        applying = {a["id"]: a["code"][0]["coding"][0]["code"] for a in group.get("action", [])}
        cautions = [
            e["resource"]
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "DetectedIssue"
            and e["resource"]["code"]["coding"][0]["code"] == "caution"
        ]
        assert len(cautions) == sum(s == "caution" for s in applying.values())
        return Observed(applying=applying)
