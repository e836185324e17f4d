"""The fictional guideline, installed through an entry point exactly as another team would
ship one, runs through the registry and the command line with no line of nkr knowing it:
the proof that the guideline interface is complete."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from nkr import InputError
from nkr._cli import main
from nkr._package import MEMBERS, discover, registry
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
        "nkr (fiktiv, kun til test): NKR Fictional guideline (test), version 0.1 (not in force)",
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
            "valuesets, prefetch, read_record, services, cards, topic_label, form, handout, "
            "samples",
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


def test_the_feedback_report_names_a_topic_from_its_guideline(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from nkr import _cli
    from nkr._package import Registry

    fictional = registry().get(FICTIONAL_ID)
    monkeypatch.setattr(_cli, "registry", lambda: Registry((fictional,), FICTIONAL_ID))
    assert _cli._topic_label("fiktiv-opfoelgning", "en") == "Fictional follow-up"
    assert _cli._topic_label("no-such-topic", "en") == "no-such-topic"
    assert _cli._topic_label(None, "da") == "(ukendt kort)"
