"""The ``nkr`` command line, run as a user runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from nkr._cli import main
from nkr.guidelines.lumbar_radiculopathy import GUIDELINE_FILE, package

G = package().content


def run(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nkr", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


def write_case(tmp_path: Path, data: Any, name: str = "case.json") -> Path:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return path


CASE = {
    "age": 45,
    "symptom_onset": "2026-10-01",
    "signs": ["radicular_leg_pain", "reflex_loss"],
    "severe_disabling_pain": True,
    "non_surgical_treatment": ["supervised_exercise"],
    "planned": ["mri"],
}


def test_guidelines_lists_the_shipped_one(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["guidelines", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {
            "id": "nkr-lumbal-radikulopati",
            "slug": "lumbal-radikulopati",
            "version": "1.1",
            "in_force": False,
            "title": G.title.da,
            "default": True,
        }
    ]
    assert main(["guidelines", "--lang", "en"]) == 0
    out = capsys.readouterr().out.split("\n", 1)
    assert out[0] == "nkr-lumbal-radikulopati *  1.1  Not in force"
    assert " ".join(out[1].split()) == G.title.en


def test_guide_text_in_danish_from_another_folder(tmp_path: Path) -> None:
    result = run("guide", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    out = " ".join(result.stdout.split())
    assert G.title.da in out
    assert "Ikke gældende" in out
    for rec in G.recommendations:
        assert rec.wording.da in out
    assert "↑↑ = en stærk anbefaling for" in out


def test_guide_markdown_in_english(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["guide", "--lang", "en", "--format", "markdown"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"# {G.title.en}\n")
    for section in G.sections:
        assert f"## {section.heading.en}\n" in out
    assert f"- **↓ ⊕** {G.recommendation('mri').wording.en} `mri`" in out


def test_guide_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["guide", "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["status"]["in_force"] is False
    recs = [r for s in data["sections"] for r in s["recommendations"]]
    assert [r["id"] for r in recs] == [r.id for r in G.recommendations]
    assert recs[0]["symbols"] == "↑ ⊕⊕"


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_guide_marks_the_softwares_reading_of_the_population(
    fmt: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    assert main(["guide", "--format", fmt]) == 0
    out = " ".join(capsys.readouterr().out.replace("\\n", " ").split())
    assert G.scope.text.da in out
    for assumption in G.scope_assumptions:
        assert assumption.text.da.replace('"', "") in out.replace('\\"', "").replace('"', "")
    assert G.legend.good_practice.da in out
    assert G.legend.no_evidence.da in out
    for paragraph in G.about:
        assert paragraph.da in out


def test_evaluate_table(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "400")
    path = write_case(tmp_path, CASE)
    assert main(["evaluate", str(path), "--date", "2026-11-26", "--lang", "en"]) == 0
    out = capsys.readouterr().out
    assert "In the target population" in out
    assert "week 8 of 12" in out
    assert "Spine-surgeon assessment due by 2026-12-24." in out
    assert "caution" in out
    assert "Planned now: MRI of the lumbar spine." in out
    assert "NRS ≥ 7" in out


def test_evaluate_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_case(tmp_path, CASE)
    assert main(["evaluate", str(path), "--date", "2026-11-26", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    statuses = {r["id"]: r["status"] for r in data["recommendations"]}
    assert statuses["mri"] == "caution"
    assert statuses["spine-surgeon-assessment"] == "due"
    assert data["lang"] == "da"
    assert data["days_since_onset"] == 56


def test_evaluate_reads_standard_input() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "nkr", "evaluate", "-", "--date", "2026-11-26", "--json"],
        input=json.dumps(CASE),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(result.stdout)["in_scope"] is True


def test_evaluate_safety_notice_is_separate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_case(tmp_path, {**CASE, "red_flags": ["cauda_equina"]})
    assert main(["evaluate", str(path), "--date", "2026-11-26"]) == 0
    out = capsys.readouterr().out
    assert "Sikkerhed – uden for retningslinjen" in out
    assert "AKUT" in out


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"age": 45,', "not valid JSON"),
        ("", "empty file"),
        ("[1, 2]", "Input should be an object"),
        ('{"age": 45, "symptom_onset": "2026-02-30", "signs": []}', "symptom_onset"),
        ('{"age": 45, "symptom_onset": "2026-10-01", "signs": ["x"]}', "signs[0]"),
        ('{"age": 45, "symptom_onset": "2026-10-01", "colour": 1}', "colour: unknown field"),
        ('{"age": 45, "symptom_onset": "2027-01-01"}', "is after the assessment date"),
    ],
)
def test_evaluate_bad_case_is_one_line_and_exit_2(
    tmp_path: Path, content: str, expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_case(tmp_path, content)
    assert main(["evaluate", str(path), "--date", "2026-11-26"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("nkr: error: ")
    assert expected in lines[0]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["evaluate", "/no/such/case.json"], "/no/such/case.json: no such file"),
        (["evaluate", "CASE", "--date", "2026-13-01"], "--date: '2026-13-01' is not a valid date"),
        (["guide", "--lang", "fr"], "Invalid value for '--lang'"),
        (["guide", "--format", "pdf"], "Invalid value for '--format'"),
        (["evaluate"], "Missing argument"),
        (["frobnicate"], "No such command"),
        (["validate", "/no/such.toml"], "/no/such.toml: no such file"),
    ],
)
def test_bad_usage_is_one_line_and_nonzero(
    tmp_path: Path, args: list[str], expected: str, capsys: pytest.CaptureFixture[str]
) -> None:
    case = write_case(tmp_path, CASE)
    assert main([str(case) if a == "CASE" else a for a in args]) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert expected in lines[0]
    assert "Traceback" not in err


def test_validate_the_shipped_guideline(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(GUIDELINE_FILE)]) == 0
    assert capsys.readouterr().out == (
        f"{GUIDELINE_FILE}: valid (nkr-lumbal-radikulopati version 1.1, 7 sections, "
        "10 recommendations); its installed rules cover every recommendation\n"
    )


def edited(tmp_path: Path, old: str, new: str) -> Path:
    """The shipped data file with ``old`` replaced by ``new``, in ``tmp_path``."""
    path = tmp_path / "guideline.toml"
    path.write_text(GUIDELINE_FILE.read_text(encoding="utf-8").replace(old, new, 1), "utf-8")
    return path


def test_validate_a_file_whose_recommendations_the_installed_rules_do_not_cover(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = edited(tmp_path, 'id = "acupuncture"', 'id = "dry-needling"')
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"nkr: error: {path}: recommendations differ from the rules of the installed guideline "
        "'nkr-lumbal-radikulopati': without a rule: ['dry-needling'], rules without a "
        "recommendation: ['acupuncture']\n"
    )


def test_validate_a_guideline_not_installed(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = edited(tmp_path, 'id = "nkr-lumbal-radikulopati"', 'id = "nkr-draft"')
    assert main(["validate", str(path)]) == 0
    assert capsys.readouterr().out.endswith("10 recommendations)\n")


def test_validate_a_broken_guideline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = edited(tmp_path, 'strength = "weak"', 'strength = "mild"')
    assert main(["validate", str(path)]) == 2
    assert capsys.readouterr().err.strip() == (
        f"nkr: error: {path}: recommendations[0].strength: Input should be 'strong' or 'weak'"
    )
