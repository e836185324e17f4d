"""The fictional guideline, installed through an entry point exactly as another team would
ship one, runs through the registry and the command line with no line of nkr knowing it:
the proof that the guideline interface is complete."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from nkr import InputError, _clock
from nkr._app import create_app
from nkr._cli import main
from nkr._package import MEMBERS, Registry, discover, registry
from nkr._settings import Settings
from nkr.cdshooks._feedback import topic_label
from tests.guidelines.install import FICTIONAL_ID, FICTIONAL_ROOT, LUMBAR_ID, add_to_path

if TYPE_CHECKING:
    # Type-checked as the package it is once installed (mypy_path); imported by the registry.
    import nkr_fictional_guideline  # noqa: F401

pytestmark = pytest.mark.usefixtures("fictional")

CASE = {"age": 40, "score": 8, "first_visit": "2026-03-01", "planned": ["fiktiv_pille"]}


def nkr(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 0
    return capsys.readouterr().out


def nkr_fails(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(list(args)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def write_case(tmp_path: Path, data: object) -> str:
    path = tmp_path / "case.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return str(path)


def test_the_registry_finds_both_with_the_shipped_one_as_default() -> None:
    found = registry()
    assert [p.id for p in found.packages] == [LUMBAR_ID, FICTIONAL_ID]
    assert found.default_id == LUMBAR_ID
    fictional = found.get(FICTIONAL_ID)
    assert fictional.slug == "fiktiv"
    assert [(s.id, s.hook) for s in fictional.services] == [
        ("test-fiktiv-patient-view", "patient-view")
    ]
    assert found.service("test-fiktiv-patient-view") == (fictional, fictional.services[0])
    assert found.by_slug("fiktiv") is fictional


def test_nkr_guidelines_lists_both(capsys: pytest.CaptureFixture[str]) -> None:
    rows = json.loads(nkr(capsys, "guidelines", "--json"))
    assert [(r["id"], r["slug"], r["default"]) for r in rows] == [
        (LUMBAR_ID, "lumbal-radikulopati", True),
        (FICTIONAL_ID, "fiktiv", False),
    ]
    assert rows[1]["title"] == "Fiktiv retningslinje til test af nkr – intet klinisk indhold"
    text = nkr(capsys, "guidelines", "--lang", "en")
    assert f"{LUMBAR_ID} *  1.1  Not in force" in text
    assert f"{FICTIONAL_ID}  0.1  Not in force" in text
    assert "Fictional guideline for testing nkr – no clinical content" in text


def test_a_command_line_process_finds_it_through_pythonpath() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nkr", "guidelines", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert [r["id"] for r in json.loads(result.stdout)] == [LUMBAR_ID, FICTIONAL_ID]


def test_nkr_guideline_setting_chooses_the_default(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NKR_GUIDELINE", FICTIONAL_ID)
    registry.cache_clear()
    assert json.loads(nkr(capsys, "guide", "--format", "json"))["id"] == FICTIONAL_ID


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_nkr_guide_prints_its_quick_guide(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    out = nkr(capsys, "guide", "--guideline", FICTIONAL_ID, "--format", fmt, "--lang", "en")
    if fmt == "json":
        data = json.loads(out)
        recs = [r for s in data["sections"] for r in s["recommendations"]]
        assert [(r["id"], r["symbols"]) for r in recs] == [
            ("fiktiv-samtale", "↑↑ ⊕⊕⊕"),
            ("fiktiv-pille", "↓ ⊕⊕"),
            ("fiktiv-opfoelgning", "√"),
        ]
        return
    flat = " ".join(out.split())
    assert "Fictional guideline for testing nkr – no clinical content" in flat
    assert "Offer the fictional talk to fictional patients." in flat
    assert "a fictional weak recommendation against" in flat
    assert "spine" not in flat.lower()


def test_nkr_evaluate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    case = write_case(tmp_path, CASE)
    out = nkr(
        capsys, "evaluate", case, "--guideline", FICTIONAL_ID, "--date", "2026-03-10", "--json"
    )
    data = json.loads(out)
    assert data["guideline"]["id"] == FICTIONAL_ID
    assert {r["id"]: r["status"] for r in data["recommendations"]} == {
        "fiktiv-samtale": "applies",
        "fiktiv-pille": "caution",
        "fiktiv-opfoelgning": "due",
    }
    assert data["facts"] == [{"key": "score", "label": "Fiktiv score", "text": "8 af 10"}]
    assert data["deadlines"] == [
        {
            "recommendation": "fiktiv-opfoelgning",
            "date": "2026-03-15",
            "kind": "due",
            "text": "Opfølgning senest 2026-03-15.",
        }
    ]
    assert data["notices"] == []
    # None of the lumbar guideline's own fields: they are its details, not the engine's.
    assert "week" not in data
    assert "spine_surgeon_due" not in data


def test_nkr_evaluate_text_and_summary(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    case = write_case(tmp_path, {**CASE, "score": 10})
    args = ["evaluate", case, "--guideline", FICTIONAL_ID, "--date", "2026-03-20", "--lang", "en"]
    text = nkr(capsys, *args)
    assert "Fictional score: 10 of 10" in text
    assert "Fictional alarm" in text
    assert "The follow-up deadline (2026-03-15) has passed." in text
    assert "overdue" in text
    summary = nkr(capsys, *args, "--format", "summary").splitlines()
    assert summary[:3] == [
        "nkr (fiktiv, kun til test): NKR Fictional guideline (test), version 0.1 "
        "(not in force since 2026-01-01)",
        "Assessment date: 2026-03-20; Fictional score: 10 of 10",
        "In the target population.",
    ]
    assert "Fictional alarm: The fictional score is 10: fictional acute action." in summary
    assert "- Follow-up within 14 days (√): overdue. " in "\n".join(summary)


def test_a_case_of_the_other_guideline_is_an_error_naming_the_field(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    case = write_case(tmp_path, {**CASE, "score": 11})
    line = nkr_fails(capsys, "evaluate", case, "--guideline", FICTIONAL_ID, "--date", "2026-03-10")
    assert line == f"nkr: error: {case}: score: Input should be less than or equal to 10"
    lumbar = nkr_fails(capsys, "evaluate", case, "--date", "2026-03-10")
    assert "symptom_onset: required field is missing" in lumbar


def test_an_unknown_guideline_names_the_installed_ones(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    installed = f"(installed: {LUMBAR_ID}, {FICTIONAL_ID})"
    assert nkr_fails(capsys, "guide", "--guideline", "nope") == (
        f"nkr: error: --guideline: unknown guideline 'nope' {installed}"
    )
    case = write_case(tmp_path, CASE)
    assert installed in nkr_fails(capsys, "evaluate", case, "--guideline", "nope")


def test_every_member_of_the_interface_is_there() -> None:
    package = registry().get(FICTIONAL_ID)
    assert all(hasattr(type(package), name) for name in MEMBERS)
    assert package.topic_label("fiktiv-opfoelgning", "en") == "Fictional follow-up"
    assert package.topic_label("overview", "en") is None


# -- the registry's errors: each one clear line ---------------------------------------------


def install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, entry_points: str, **modules: str
) -> None:
    """A distribution in ``tmp_path`` declaring ``entry_points`` (lines of the group
    ``nkr.guidelines``), with the given modules beside it."""
    info = tmp_path / "extra-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: extra\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[nkr.guidelines]\n{entry_points}\n")
    for name, source in modules.items():
        (tmp_path / f"{name}.py").write_text(source, encoding="utf-8")
    add_to_path(monkeypatch, tmp_path)


TWIN = """
from nkr_fictional_guideline import FictionalGuideline


class Twin(FictionalGuideline):
    id = {id!r}
    slug = {slug!r}


def package(env):
    return Twin(env)
"""


@pytest.mark.parametrize(
    ("entry", "modules", "expected"),
    [
        (
            "again = nkr_fictional_guideline:package",
            {},
            "guidelines: id 'test-fiktiv-retningslinje' is used twice",
        ),
        (
            "twin = twin_slug:package",
            {"twin_slug": TWIN.format(id="twin", slug="fiktiv")},
            "guidelines: slug 'fiktiv' is used twice",
        ),
        (
            "twin = twin_service:package",
            {"twin_service": TWIN.format(id="twin", slug="twin")},
            "guidelines: CDS service id 'test-fiktiv-patient-view' is used twice",
        ),
        (
            "gone = no_such_module:package",
            {},
            "guideline entry point 'gone' (no_such_module:package) cannot be loaded: "
            "No module named 'no_such_module'",
        ),
        (
            "half = half:package",
            {"half": "class Half:\n    id = 'half'\n\ndef package(env):\n    return Half()\n"},
            "guideline entry point 'half' (half:package) does not give a guideline package "
            "(nkr._package.GuidelinePackage): no slug, content, texts, parse_case, evaluate, "
            "valuesets, prefetch, read_record, indicators, judge, services, cards, topic_label, "
            "form, handout, samples, synthesis",
        ),
    ],
)
def test_a_bad_installation_is_one_clear_line(
    entry: str,
    modules: dict[str, str],
    expected: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    install(monkeypatch, tmp_path, entry, **modules)
    with pytest.raises(InputError) as raised:
        discover({})
    assert str(raised.value) == expected
    assert nkr_fails(capsys, "guidelines") == f"nkr: error: {expected}"


def test_an_unknown_nkr_guideline_setting_is_one_clear_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NKR_GUIDELINE", "nope")
    registry.cache_clear()
    assert nkr_fails(capsys, "guidelines") == (
        f"nkr: error: setting NKR_GUIDELINE: unknown guideline 'nope' "
        f"(installed: {LUMBAR_ID}, {FICTIONAL_ID})"
    )


def test_it_is_not_installed_outside_the_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    # The fixture's folder is the only place it is found: the product never lists it.
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(FICTIONAL_ROOT)])
    assert [p.id for p in discover({}).packages] == [LUMBAR_ID]


def test_no_guideline_installed_is_one_clear_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("importlib.metadata.entry_points", lambda group: [])
    with pytest.raises(InputError, match=r"^no guideline is installed \(entry points"):
        discover({})


# -- the web app and CDS Hooks, in-process -------------------------------------------------

ON = dt.date(2026, 3, 10)
SERVICE = "test-fiktiv-patient-view"
FORM = {
    "assessment_date": ON.isoformat(),
    "age": "40",
    "score": "8",
    "first_visit": "2026-03-01",
    "planned": "fiktiv_pille",
}


def _score(value: object, effective: str = "2026-03-01") -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": "s1",
        "status": "final",
        "code": {"coding": [{"system": "urn:nkr:test:fiktiv", "code": "score"}]},
        "subject": {"reference": "Patient/p1"},
        "effectiveDateTime": effective,
        "valueInteger": value,
    }


def hook_call(*observations: dict[str, Any], birth_date: str = "1986-01-01") -> dict[str, Any]:
    return {
        "hook": "patient-view",
        "hookInstance": "d1577c69-dfbe-44ad-ba6d-3e05e953b2ea",
        "context": {"userId": "Practitioner/1", "patientId": "p1"},
        "prefetch": {
            "patient": {"resourceType": "Patient", "id": "p1", "birthDate": birth_date},
            "observations": {
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [{"resource": o} for o in observations],
            },
        },
    }


Call = Callable[[httpx.AsyncClient], Awaitable[httpx.Response]]


def http(tmp_path: Path, *calls: Call, known: Registry | None = None) -> list[httpx.Response]:
    """``calls`` in order against one app (``known``: the installed guidelines), in-process."""
    settings = Settings.from_env({"NKR_DATA_DIR": str(tmp_path)})
    app = create_app(settings, known or registry())

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as c:
            return [await call(c) for call in calls]

    return asyncio.run(run())


def get(path: str) -> Call:
    return lambda client: client.get(path)


def post(path: str, *, data: Mapping[str, str] | None = None, json: object = None) -> Call:
    return lambda client: client.post(path, data=data, json=json)


@pytest.fixture
def today(monkeypatch: pytest.MonkeyPatch) -> dt.date:
    """The service's "today" (CDS Hooks and the blank form take the date from the clock)."""
    noon = dt.datetime(ON.year, ON.month, ON.day, 11, 0, tzinfo=dt.UTC)
    monkeypatch.setattr(_clock, "utc_now", lambda: noon)
    return ON


def test_the_start_page_lists_both_guidelines(tmp_path: Path) -> None:
    (start,) = http(tmp_path, get("/?lang=en"))
    assert start.status_code == 200
    assert 'href="/fiktiv/?lang=en"' in start.text
    assert 'href="/lumbal-radikulopati/?lang=en"' in start.text
    assert "Fictional guideline for testing nkr – no clinical content" in start.text


def test_its_guide_and_recommendation_pages_are_under_its_slug(tmp_path: Path) -> None:
    guide, rec, other = http(
        tmp_path,
        get("/fiktiv/?lang=en"),
        get("/fiktiv/anbefalinger/fiktiv-opfoelgning?lang=en"),
        get("/fiktiv/anbefalinger/mri"),
    )
    assert guide.status_code == rec.status_code == 200
    assert "Offer the fictional talk to fictional patients." in guide.text
    assert 'href="/fiktiv/anbefalinger/fiktiv-pille?lang=en"' in guide.text
    assert "within 14 days of the first visit" in rec.text
    # The lumbar guideline's recommendation is not one of its pages.
    assert other.status_code == 404


def test_its_blank_form_has_its_own_fields(tmp_path: Path, today: dt.date) -> None:
    (page,) = http(tmp_path, get("/fiktiv/vurdering?lang=en"))
    assert page.status_code == 200
    names = set(re.findall(r'<input[^>]* name="([a-z_]+)"', page.text))
    assert names == {"lang", "assessment_date", "age", "score", "first_visit", "followed_up"} | {
        "planned"
    }
    assert f'value="{today.isoformat()}"' in page.text
    assert "A whole number from 0 to 10." in page.text
    assert "symptom_onset" not in page.text


def test_its_assessment_shows_each_status_and_the_deadline(tmp_path: Path) -> None:
    (page,) = http(tmp_path, post("/fiktiv/vurdering", data={**FORM, "lang": "en"}))
    assert page.status_code == 200
    statuses = dict(re.findall(r'id="result-([a-z0-9-]+)" data-status="([a-z-]+)"', page.text))
    assert statuses == {
        "fiktiv-samtale": "applies",
        "fiktiv-pille": "caution",
        "fiktiv-opfoelgning": "due",
    }
    assert "Follow-up by 2026-03-15." in page.text
    assert 'id="deadline-fiktiv-opfoelgning"' in page.text


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("score", "11", "Enter a whole number from 0 to 10."),
        ("score", "", "This field is required."),
        ("age", "forty", "Enter a whole number from 0 to 130."),
        ("first_visit", "2026-03-11", "The first visit cannot be after the assessment date."),
    ],
)
def test_a_wrong_field_is_an_inline_error_beside_it(
    field: str, value: str, message: str, tmp_path: Path
) -> None:
    (page,) = http(tmp_path, post("/fiktiv/vurdering", data={**FORM, field: value, "lang": "en"}))
    assert page.status_code == 400
    error = re.search(rf'<p class="field-error" id="{field}-error">(.*?)</p>', page.text, re.S)
    assert error is not None, page.text[:2000]
    assert message in error[1]
    assert f'href="#{field}"' in page.text


def test_its_handout(tmp_path: Path) -> None:
    (page,) = http(tmp_path, get("/fiktiv/pjece?lang=en"))
    assert page.status_code == 200
    assert "You are offered a fictional talk." in page.text
    assert "not in force since 1 January 2026" in page.text


def test_cds_discovery_lists_its_service_with_its_prefetch(tmp_path: Path) -> None:
    (discovery,) = http(tmp_path, get("/cds-services"))
    services = {s["id"]: s for s in discovery.json()["services"]}
    assert services[SERVICE] == {
        "hook": "patient-view",
        "id": SERVICE,
        "title": "Fiktiv retningslinje (test)",
        "description": "Fiktive kort til test af nkr.",
        "prefetch": {
            "patient": "Patient/{{context.patientId}}",
            "observations": "Observation?patient={{context.patientId}}",
        },
    }
    assert "nkr-lumbal-radikulopati-patient-view" in services


def test_a_cds_call_gives_its_card(tmp_path: Path, today: dt.date) -> None:
    call = hook_call(_score(8))
    call["extension"] = {"nkr-lang": "en"}
    (response,) = http(tmp_path, post(f"/cds-services/{SERVICE}", json=call))
    assert response.status_code == 200, response.text
    (card,) = response.json()["cards"]
    assert card["indicator"] == "warning"
    assert card["summary"].startswith("Fictional follow-up: Follow-up by 2026-03-15.")
    assert card["source"]["topic"] == {
        "system": "urn:nkr:cds-card-topic",
        "code": "fiktiv-opfoelgning",
        "display": "Fictional follow-up",
    }
    assert card["source"]["url"] == "https://example.org/fiktiv-retningslinje"
    assert [link["url"] for link in card["links"]] == [
        "http://127.0.0.1/fiktiv/anbefalinger/fiktiv-opfoelgning?lang=en"
    ]
    # How the record was read, and the guideline's exact wording.
    assert "Fictional score 8 from 2026-03-01; first visit 2026-03-01." in card["detail"]
    assert "within 14 days of the first visit" in card["detail"]


def test_a_cds_call_without_a_score_gives_no_card(tmp_path: Path, today: dt.date) -> None:
    other = {**_score(8), "code": {"coding": [{"system": "urn:nkr:test:fiktiv", "code": "x"}]}}
    (response,) = http(tmp_path, post(f"/cds-services/{SERVICE}", json=hook_call(other)))
    assert response.status_code == 200
    assert response.json() == {"cards": []}


@pytest.mark.parametrize(
    ("call", "expression", "problem"),
    [
        (
            hook_call(_score(11)),
            "$.prefetch.observations.entry[0].resource.valueInteger",
            "expected a score from 0 to 10",
        ),
        (
            hook_call(_score(8, "2026-03-11")),
            "$.prefetch.observations.entry[0].resource.effectiveDateTime",
            "after the assessment date",
        ),
        (
            hook_call(_score(8), birth_date="1986-02-30"),
            "$.prefetch.patient.birthDate",
            "impossible date",
        ),
    ],
)
def test_a_value_that_cannot_be_right_is_a_400_at_its_json_path(
    call: dict[str, Any], expression: str, problem: str, tmp_path: Path, today: dt.date
) -> None:
    (response,) = http(tmp_path, post(f"/cds-services/{SERVICE}", json=call))
    assert response.status_code == 400
    (issue,) = response.json()["issue"]
    assert issue["expression"] == [expression]
    assert problem in issue["diagnostics"]


def test_the_integrators_page_calls_it_with_its_sample(tmp_path: Path, today: dt.date) -> None:
    query = f"guideline=fiktiv&service={SERVICE}&sample=1-high-score&lang=en"
    (page,) = http(tmp_path, get(f"/integration?{query}"))
    assert page.status_code == 200
    assert "Fictional follow-up: Follow-up by 2026-03-15." in page.text


def test_a_guidelines_samples_go_to_its_own_services_only(tmp_path: Path) -> None:
    lumbar = "nkr-lumbal-radikulopati-patient-view"
    query = f"guideline=fiktiv&service={lumbar}&sample=1-high-score&lang=en"
    sent, listed = http(
        tmp_path, get(f"/integration?{query}"), get("/integration?guideline=fiktiv")
    )
    assert sent.status_code == 400
    # The fictional guideline's page offers its samples to its own service, and for the other
    # guideline's services a link to that guideline's samples instead.
    assert f'name="service" value="{SERVICE}"' in listed.text
    assert f'name="service" value="{lumbar}"' not in listed.text
    assert "/integration?guideline=lumbal-radikulopati" in listed.text


def test_the_feedback_report_names_a_topic_from_its_guideline(
    tmp_path: Path, today: dt.date, capsys: pytest.CaptureFixture[str]
) -> None:
    async def feedback(client: httpx.AsyncClient) -> httpx.Response:
        response = await client.post(f"/cds-services/{SERVICE}", json=hook_call(_score(8)))
        (card,) = response.json()["cards"]
        item = {"card": card["uuid"], "outcome": "overridden", "outcomeTimestamp": "2026-03-10"}
        return await client.post(f"/cds-services/{SERVICE}/feedback", json={"feedback": [item]})

    (stored,) = http(tmp_path, feedback)
    assert stored.status_code == 200, stored.text
    out = nkr(capsys, "feedback", "report", "--data-dir", str(tmp_path), "--json", "--lang", "en")
    (row,) = json.loads(out)
    assert (row["topic"], row["label"], row["shown"], row["overridden"]) == (
        "fiktiv-opfoelgning",
        "Fictional follow-up",
        1,
        1,
    )
    assert topic_label("no-such-topic", "en") == "no-such-topic"


def test_the_installed_product_alone_does_not_see_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p != str(FICTIONAL_ROOT)])
    alone = discover({})
    start, page, discovery, call = http(
        tmp_path,
        get("/"),
        get("/fiktiv/"),
        get("/cds-services"),
        post(f"/cds-services/{SERVICE}", json=hook_call(_score(8))),
        known=alone,
    )
    assert start.status_code == 200
    assert "Fiktiv" not in start.text
    assert "/fiktiv/" not in start.text
    assert page.status_code == 404
    assert SERVICE not in discovery.text
    assert call.status_code == 404
