"""One "today" for every interface: at 00:30 in Copenhagen (23:30 UTC the evening before), the
web app, the CDS Hooks service and the command line all assess on the Danish date, so day 84
and day 85 can never differ between them. The time zone is set in one place
(``NKR_TIMEZONE``)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import httpx
import pytest

import nkr._clock
from nkr._app import create_app
from nkr._cli import main
from nkr._settings import Settings
from tests._async import run_async

# 23:30 UTC on 1 March is 00:30 on 2 March in Copenhagen (CET, UTC+1).
INSTANT = dt.datetime(2026, 3, 1, 23, 30, tzinfo=dt.UTC)
DANISH_DATE = dt.date(2026, 3, 2)
# Day 85 on the Danish date (out of scope), day 84 on the UTC date (in scope).
ONSET = DANISH_DATE - dt.timedelta(days=85)


@pytest.fixture(autouse=True)
def _stand_at_the_instant(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(nkr._clock, "utc_now", lambda: INSTANT)


def _settings(tmp_path: Path, **env: str) -> Settings:
    return Settings.from_env({"NKR_DATA_DIR": str(tmp_path), **env})


def _client(settings: Settings) -> httpx.AsyncClient:
    transport = httpx.ASGITransport(app=create_app(settings))
    return httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1")


def _hook_request() -> dict[str, Any]:
    condition = {
        "resourceType": "Condition",
        "id": "c1",
        "clinicalStatus": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                    "code": "active",
                }
            ]
        },
        "code": {"coding": [{"system": "http://hl7.org/fhir/sid/icd-10", "code": "M54.1"}]},
        "subject": {"reference": "Patient/p1"},
        "onsetDateTime": ONSET.isoformat(),
    }

    def bundle(resources: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "entry": [{"resource": r} for r in resources],
        }

    return {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1", "birthDate": "1980-05-05"},
            "conditions": bundle([condition]),
            "observations": bundle([]),
            "procedures": bundle([]),
            "serviceRequests": bundle([]),
        },
    }


async def _cds_cards(settings: Settings) -> list[dict[str, Any]]:
    async with _client(settings) as client:
        response = await client.post(
            "/cds-services/nkr-lumbal-radikulopati-patient-view", json=_hook_request()
        )
    assert response.status_code == 200, response.text
    cards: list[dict[str, Any]] = response.json()["cards"]
    return cards


async def _web_result(settings: Settings) -> str:
    form = {"age": "45", "symptom_onset": ONSET.isoformat(), "signs": "radicular_leg_pain"}
    async with _client(settings) as client:
        blank = await client.get("/vurdering")
        result = await client.post("/vurdering", data=form)
    assert result.status_code == 200
    return blank.text + result.text


def _cli_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> dict[str, Any]:
    case = tmp_path / "case.json"
    case.write_text(
        json.dumps({"age": 45, "symptom_onset": ONSET.isoformat(), "signs": ["radicular_leg_pain"]})
    )
    assert main(["evaluate", str(case), "--json"]) == 0
    out: dict[str, Any] = json.loads(capsys.readouterr().out)
    return out


def test_the_clock_gives_the_danish_date() -> None:
    assert nkr._clock.today() == DANISH_DATE
    assert Settings().today() == DANISH_DATE


def test_every_interface_assesses_on_the_danish_date(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NKR_TIMEZONE", raising=False)
    settings = _settings(tmp_path)
    # Day 85 in Copenhagen: outside the 12 weeks everywhere.
    cli = _cli_json(tmp_path, capsys)
    assert (cli["date"], cli["days_since_onset"], cli["in_scope"]) == ("2026-03-02", 85, False)
    cards = run_async(_cds_cards(settings))
    assert [c["source"]["topic"]["code"] for c in cards] == []
    page = run_async(_web_result(settings))
    assert 'value="2026-03-02"' in page  # the form's default assessment date
    assert "uge 13 (ud over de 12 uger)" in page


def test_the_time_zone_is_configured_in_one_place(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NKR_TIMEZONE", "UTC")
    settings = _settings(tmp_path, NKR_TIMEZONE="UTC")
    # 1 March in UTC: day 84, the last day in scope, in every interface.
    cli = _cli_json(tmp_path, capsys)
    assert (cli["date"], cli["days_since_onset"], cli["in_scope"]) == ("2026-03-01", 84, True)
    cards = run_async(_cds_cards(settings))
    assert [c["source"]["topic"]["code"] for c in cards] == ["overview"]
    assert "uge 12 af 12" in cards[0]["summary"]
    page = run_async(_web_result(settings))
    assert 'value="2026-03-01"' in page
    assert "uge 12 af 12" in page


def test_an_unknown_time_zone_stops_start_up_with_one_line() -> None:
    with pytest.raises(nkr.InputError, match=r"NKR_TIMEZONE: .*not a known time zone"):
        Settings.from_env({"NKR_TIMEZONE": "Europe/Atlantis"})
