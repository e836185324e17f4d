"""Issue 9, findings 7 and 9, in-process against the app ``nkr serve`` runs: digits other than
ASCII are not numbers, and patient data does not leak into caches, URLs, FastAPI's own error
bodies or the log.

FHIR's date, dateTime and integer regexes are ASCII: ``١٩٧٩-03-14`` (Arabic-Indic digits) and
``２０２０-03-14`` (full-width digits) are not dates, wherever they come in. Python reads them as
numbers (``int``, ``str.isdigit``, ``re``'s ``\\d`` without ``re.ASCII``), which is how they got
through before.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import Query

from nkr._app import create_app
from nkr._settings import Settings
from nkr.web._pages import SECURITY_HEADERS
from tests._async import run_async

from .cdshooks.fhir_data import (
    SERVICE_IDS,
    bundle,
    days_ago,
    hook_request,
    pain,
    patient,
    radiculopathy,
    service_request,
)
from .conftest import in_process

ARABIC_INDIC = "١٩٧٩-03-14"
FULL_WIDTH = "２０２０-03-14"
# Digits that are not ASCII, in each part of a date.
NON_ASCII_DATES = [ARABIC_INDIC, FULL_WIDTH, "1979-٠3-14", "1979-03-1٤", "１９７９"]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    """The app of our own (defaults, auth off), in-process."""
    with in_process({}, tmp_path_factory.mktemp("leaks")) as c:
        yield c


def _call(client: httpx.Client, hook: str, body: dict[str, Any] | bytes) -> httpx.Response:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    return client.post(
        f"/cds-services/{SERVICE_IDS[hook]}",
        content=content,
        headers={"Content-Type": "application/json"},
    )


def _outcome(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    [issue] = body["issue"]
    return dict(issue)


# -- finding 7: non-ASCII digits ----------------------------------------------------------------


@pytest.mark.parametrize("birth_date", NON_ASCII_DATES)
def test_a_birth_date_in_other_digits_is_a_400_naming_birth_date(
    client: httpx.Client, birth_date: str
) -> None:
    body = hook_request("patient-view", pat=patient(birth_date=birth_date))
    issue = _outcome(_call(client, "patient-view", body), 400)
    assert "birthDate: not a FHIR date" in issue["diagnostics"]
    assert birth_date not in issue["diagnostics"]


@pytest.mark.parametrize("field", ["onsetDateTime", "recordedDate", "onsetPeriod.start"])
@pytest.mark.parametrize("value", [ARABIC_INDIC, FULL_WIDTH, "2026-10-01T1٠:00:00+01:00"])
def test_an_onset_in_other_digits_is_a_400_naming_the_field(
    client: httpx.Client, field: str, value: str
) -> None:
    condition = radiculopathy(onset_days_ago=None)
    if field == "onsetPeriod.start":
        condition["onsetPeriod"] = {"start": value}
    else:
        condition[field] = value
    body = hook_request("patient-view", conditions=[condition])
    issue = _outcome(_call(client, "patient-view", body), 400)
    assert f"{field}: not a FHIR dateTime" in issue["diagnostics"]


@pytest.mark.parametrize("field", ["effectiveDateTime", "issued"])
def test_a_pain_score_dated_in_other_digits_is_a_400_naming_the_field(
    client: httpx.Client, field: str
) -> None:
    score = pain(8)
    del score["effectiveDateTime"]
    score[field] = days_ago(2).replace("0", "٠") + "T10:00:00Z"
    body = hook_request("patient-view", observations=[score])
    issue = _outcome(_call(client, "patient-view", body), 400)
    assert f"{field}: not a FHIR dateTime" in issue["diagnostics"]


@pytest.mark.parametrize("value", ["٨", "８", "8"])
def test_a_pain_score_written_as_text_is_not_a_number(client: httpx.Client, value: str) -> None:
    score = pain(8)
    score["valueQuantity"]["value"] = value
    body = hook_request("patient-view", observations=[score])
    issue = _outcome(_call(client, "patient-view", body), 400)
    assert issue["diagnostics"].startswith(
        "$.prefetch.observations.entry[0].resource.valueQuantity.value: expected an integer or a"
        " number"
    ), issue
    assert value not in issue["diagnostics"]


def test_ascii_digits_still_read_as_before(client: httpx.Client) -> None:
    body = hook_request("patient-view", pat=patient(birth_date="1979-03-14"))
    response = _call(client, "patient-view", body)
    assert response.status_code == 200, response.text
    assert response.json()["cards"]


def _field_error(page: str, name: str) -> str | None:
    match = re.search(rf'<p class="field-error" id="{name}-error">(.*?)</p>', page)
    return None if match is None else match.group(1)


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("age", "٤٧", "Alderen skal være et helt tal"),
        ("age", "４７", "Alderen skal være et helt tal"),
        ("birth_date", ARABIC_INDIC, "er ikke en dato"),
        ("birth_date", "14-03-١٩٧٩", "er ikke en dato"),
        ("symptom_onset", FULL_WIDTH, "er ikke en dato"),
        ("symptom_onset", "０１.１０.２０２６", "er ikke en dato"),
        ("assessment_date", "٢٠٢٦-11-26", "er ikke en dato"),
    ],
)
def test_the_web_form_refuses_other_digits_beside_the_field(
    client: httpx.Client, field: str, value: str, words: str
) -> None:
    data = {"symptom_onset": days_ago(20), "signs": "reflex_loss"}
    data |= {"age": "47"} if field != "birth_date" else {}
    data[field] = value
    response = client.post("/vurdering", data=data)
    assert response.status_code == 400
    error = _field_error(response.text, field)
    assert error is not None, response.text[:2000]
    assert words in error


@pytest.mark.parametrize("field", ["birth_date", "symptom_onset"])
@pytest.mark.parametrize("value", [ARABIC_INDIC, FULL_WIDTH])
def test_the_command_line_refuses_other_digits_in_one_line(
    tmp_path: Path, field: str, value: str
) -> None:
    case = {"birth_date": "1979-03-14", "symptom_onset": "2026-10-01", "signs": ["reflex_loss"]}
    case[field] = value
    path = tmp_path / "case.json"
    path.write_text(json.dumps(case, ensure_ascii=False), encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "nkr", "evaluate", str(path), "--date", "2026-11-26"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.strip().splitlines()
    assert f"{field}: Input should be a valid date" in line


def test_the_command_line_refuses_an_assessment_date_in_other_digits(tmp_path: Path) -> None:
    path = tmp_path / "case.json"
    path.write_text(
        json.dumps({"age": 47, "symptom_onset": "2026-10-01", "signs": ["reflex_loss"]}),
        encoding="utf-8",
    )
    done = subprocess.run(
        [sys.executable, "-m", "nkr", "evaluate", str(path), "--date", "٢٠٢٦-11-26"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    [line] = done.stderr.strip().splitlines()
    assert "--date" in line


# -- finding 9: small leaks ---------------------------------------------------------------------


def test_every_cds_service_answer_is_kept_out_of_caches(client: httpx.Client) -> None:
    """Cards carry patient-derived dates; error answers may name the patient's fields."""
    ok = _call(client, "patient-view", hook_request("patient-view"))
    assert ok.status_code == 200
    answers = {
        "cards": ok,
        "invalid": _call(client, "patient-view", b"{not json"),
        "unknown service": client.post(
            "/cds-services/no-such-service", json=hook_request("patient-view")
        ),
        "prefetch missing": _call(client, "patient-view", hook_request("patient-view") | {}),
        "feedback": client.post(
            f"/cds-services/{SERVICE_IDS['patient-view']}/feedback",
            json={
                "feedback": [
                    {
                        "card": ok.json()["cards"][0]["uuid"],
                        "outcome": "accepted",
                        "outcomeTimestamp": "2026-11-26T10:00:00Z",
                    }
                ]
            },
        ),
        "feedback invalid": client.post(
            f"/cds-services/{SERVICE_IDS['patient-view']}/feedback", content=b"[]"
        ),
        "too large": client.post(
            f"/cds-services/{SERVICE_IDS['patient-view']}",
            content=b" " * 2_000_000,
            headers={"Content-Type": "application/json"},
        ),
        "wrong method": client.delete(f"/cds-services/{SERVICE_IDS['patient-view']}"),
    }
    no_prefetch = hook_request("patient-view")
    del no_prefetch["prefetch"]
    answers["prefetch missing"] = _call(client, "patient-view", no_prefetch)
    for name, response in answers.items():
        assert response.headers.get("cache-control") == "no-store", (name, response.status_code)


def test_discovery_carries_no_patient_data_and_may_be_cached_briefly(
    client: httpx.Client,
) -> None:
    response = client.get("/cds-services")
    assert response.status_code == 200
    assert "no-store" not in response.headers.get("cache-control", "")
    assert "accept-language" in response.headers.get("vary", "").lower()


CASE_QUERY = {
    "age": "47",
    "birth_date": "",
    "symptom_onset": days_ago(20),
    "signs": "reflex_loss",
    "planned": "mri",
    "severe_disabling_pain": "yes",
}


@pytest.mark.parametrize("extra", [{}, {"print": "1"}, {"lang": "en"}, {"view": "edit"}])
def test_a_get_with_case_fields_never_shows_a_result_or_the_values(
    client: httpx.Client, extra: dict[str, str]
) -> None:
    response = client.get("/vurdering", params=CASE_QUERY | extra)
    assert response.status_code == 303
    assert response.headers["location"] == (
        "/vurdering?lang=en" if extra.get("lang") == "en" else "/vurdering"
    )
    assert CASE_QUERY["symptom_onset"] not in response.text
    followed = client.get("/vurdering", params=CASE_QUERY | extra, follow_redirects=True)
    assert followed.status_code == 200
    assert str(followed.url).endswith(response.headers["location"])
    page = followed.text
    assert 'class="case-form"' in page
    assert 'class="result-head"' not in page
    assert 'id="result-' not in page
    assert CASE_QUERY["symptom_onset"] not in page
    assert 'value="47"' not in page


def test_the_result_comes_only_from_a_post(client: httpx.Client) -> None:
    response = client.post("/vurdering", data=CASE_QUERY)
    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    assert CASE_QUERY["symptom_onset"] not in str(response.url)
    # No link on the result page carries the case in its address.
    for href in re.findall(r'href="([^"]*)"', response.text):
        assert "symptom_onset" not in href, href
        assert "age=" not in href, href


@pytest.mark.parametrize(
    "path", ["/?lang=english", "/anbefalinger/mri?lang=danish", "/pjece?lang=xxxxxxxx"]
)
def test_an_over_long_lang_gets_the_apps_own_error_page(client: httpx.Client, path: str) -> None:
    response = client.get(path)
    assert response.status_code == 400
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, name
    assert '<html lang="da">' in response.text
    assert "Siden kunne ikke vises" in response.text
    assert '"detail"' not in response.text  # not FastAPI's JSON
    assert "english" not in response.text
    assert "danish" not in response.text


def test_an_api_parameter_error_is_an_operation_outcome_naming_it(tmp_path: Path) -> None:
    """No API route of the app has a parameter FastAPI validates today (the endpoints read
    their input themselves); the handler is checked with one added for the test."""
    app = create_app(Settings(data_dir=tmp_path))

    @app.get("/fhir/_check")
    def check(count: int = Query(ge=1)) -> dict[str, int]:
        return {"count": count}

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return await c.get("/fhir/_check?count=zero")

    response = run_async(get())
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("application/fhir+json")
    issue = response.json()["issue"][0]
    assert issue["code"] == "invalid"
    assert issue["expression"] == ["count"]
    assert issue["diagnostics"].startswith("count: ")
    assert "zero" not in response.text
    assert response.headers["cache-control"] == "no-store"


def test_an_order_select_draft_without_resource_type_is_a_400_not_a_logged_error(
    client: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    # What the server would log: nkr's loggers (which do not propagate) and everything else.
    loggers = [logging.getLogger("nkr"), logging.getLogger()]
    for logger in loggers:
        logger.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    draft = service_request("mri", "sr-1")
    del draft["resourceType"]
    body = hook_request("order-select", drafts=[draft], selections=["ServiceRequest/sr-1"])
    sign = hook_request("order-sign", drafts=[draft])
    try:
        for _ in range(3):
            issue = _outcome(_call(client, "order-select", body), 400)
            assert issue["diagnostics"].startswith(
                "$.context.draftOrders.entry[0].resource.resourceType: required"
            ), issue
        assert "resourceType" in _outcome(_call(client, "order-sign", sign), 400)["diagnostics"]
    finally:
        for logger in loggers:
            logger.removeHandler(caplog.handler)
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


def test_an_order_select_draft_with_a_bad_id_is_a_400(client: httpx.Client) -> None:
    draft = service_request("mri", "sr-1")
    draft["id"] = 17
    body = hook_request("order-select", drafts=[draft], selections=["ServiceRequest/17"])
    issue = _outcome(_call(client, "order-select", body), 400)
    assert issue["diagnostics"].startswith("$.context.draftOrders.entry[0].resource.id: ")


def test_an_order_select_draft_with_an_empty_id_can_be_selected(client: httpx.Client) -> None:
    """As before the typed reader: the selection names the entry by "ResourceType/id"."""
    draft = service_request("mri", "sr-1")
    draft["id"] = ""
    body = hook_request("order-select", drafts=[draft], selections=["ServiceRequest/"])
    response = _call(client, "order-select", body)
    assert response.status_code == 200, response.text


def test_cards_bundles_still_work_for_order_select(client: httpx.Client) -> None:
    drafts = [service_request("mri", "sr-1"), service_request("bed_rest", "sr-2")]
    body = hook_request("order-select", drafts=drafts, selections=["ServiceRequest/sr-1"])
    body["prefetch"]["conditions"] = bundle([radiculopathy()])
    response = _call(client, "order-select", body)
    assert response.status_code == 200, response.text
