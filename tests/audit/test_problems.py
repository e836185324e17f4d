"""Bad input: every line the audit cannot use is counted and reported with its file and line,
never dropped silently and never stopping the run; a missing or unreadable SOURCE is one
clear line and a non-zero exit. Small hand-made exports, with hand-counted expectations."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import orjson
import pyarrow.parquet as pq
import pytest

from nkr._cli import main
from tests.guidelines.install import FICTIONAL_ID

ICD10 = "http://hl7.org/fhir/sid/icd-10"


def _patient(pid: str, born: str = "1980-05-01", org: str | None = "Organization/o1") -> bytes:
    r: dict[str, Any] = {"resourceType": "Patient", "id": pid, "birthDate": born}
    if org:
        r["managingOrganization"] = {"reference": org}
    return orjson.dumps(r)


def _diagnosis(pid: str, onset: str) -> bytes:
    return orjson.dumps(
        {
            "resourceType": "Condition",
            "id": f"c-{pid}",
            "subject": {"reference": f"Patient/{pid}"},
            "code": {"coding": [{"system": ICD10, "code": "M54.1"}]},
            "onsetDateTime": onset,
        }
    )


def _write(folder: Path, name: str, lines: list[bytes]) -> None:
    folder.mkdir(exist_ok=True)
    (folder / name).write_bytes(b"\n".join(lines) + b"\n")


def _audit(source: Path, out: Path, *extra: str) -> dict[str, Any]:
    assert main(["audit", str(source), "--out", str(out), "--min-cell", "0", *extra]) == 0
    summary: dict[str, Any] = json.loads((out / "summary.json").read_text())
    return summary


def test_bad_lines_are_counted_and_reported_with_file_and_line(tmp_path: Path) -> None:
    export = tmp_path / "export"
    _write(
        export,
        "Patient.ndjson",
        [
            _patient("a"),
            _patient("b"),
            b"",  # a blank line: no resource, no problem
            b'{"resourceType": "Patient", "id": "c", "birthDate": 1980}',  # line 4: wrong type
            _patient("d", born="1980-02-30"),  # line 5: an impossible date
        ],
    )
    _write(
        export,
        "Condition.ndjson",
        [
            _diagnosis("a", "2025-01-10"),
            b"{not json",  # line 2
            b'{"resourceType": "Conditions", "subject": {"reference": "Patient/a"}}',  # line 3
            b'{"resourceType": "Condition", "id": "x"}',  # line 4: no patient
            _diagnosis("b", "2025-02-10"),
            b"[1, 2]",  # line 6: JSON, but no resource
            _diagnosis("c", "2025-02-11"),
            _diagnosis("d", "2025-02-12"),
        ],
    )
    _write(export, "Organization.ndjson", [b'{"resourceType": "Organization", "id": "o1"}'])
    summary = _audit(export, tmp_path / "out")
    cond, pat = str(export / "Condition.ndjson"), str(export / "Patient.ndjson")
    listed = [(p["kind"], p["file"], p["line"]) for p in summary["problems"]]
    assert sorted(listed) == sorted(
        [
            ("malformed", cond, 2),
            ("unknown-type", cond, 3),
            ("no-patient", cond, 4),
            ("malformed", cond, 6),
            ("malformed", pat, 4),
            ("invalid", pat, 5),
        ]
    )
    assert summary["problem_counts"] == {
        "malformed": 3,
        "unknown-type": 1,
        "no-patient": 1,
        "invalid": 1,
    }
    assert summary["problems_total"] == 6
    by_line = {(p["file"], p["line"]): p["problem"] for p in summary["problems"]}
    assert by_line[(pat, 4)] == "$.birthDate: expected a string or null, got an integer"
    assert by_line[(pat, 5)] == "birthDate: impossible date"
    # The run went on: a and b judged; c (its Patient left out: no birth date) too; d refused.
    assert summary["patients"] == 4
    assert summary["episodes"] == 3
    assert summary["exclusions"] == {"no-birth-date": 1}
    assert summary["shared_resources"] == 1
    assert summary["resources"] == 13
    rows = pq.read_table(tmp_path / "out" / "episodes.parquet").to_pylist()
    assert sorted(r["patient"] for r in rows) == ["Patient/a", "Patient/b", "Patient/c"]


def test_a_manifest_with_relative_and_file_urls(tmp_path: Path) -> None:
    export = tmp_path / "export"
    _write(export, "Patient.ndjson", [_patient("a")])
    export.joinpath("Condition.ndjson.gz").write_bytes(
        gzip.compress(_diagnosis("a", "2025-01-10") + b"\n")
    )
    manifest = {
        "transactionTime": "2026-01-01T00:00:00Z",
        "request": "https://example.org/fhir/$export",
        "requiresAccessToken": False,
        "output": [
            {"type": "Patient", "url": "Patient.ndjson"},
            {"type": "Condition", "url": (export / "Condition.ndjson.gz").as_uri()},
        ],
        "error": [],
    }
    (export / "manifest.json").write_text(json.dumps(manifest))
    summary = _audit(export / "manifest.json", tmp_path / "out")
    assert (summary["files"], summary["episodes"], summary["in_scope"]) == (2, 1, 1)


def _one_line_error(args: list[str], capsys: pytest.CaptureFixture[str]) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda p: p / "missing", "no such file or folder"),
        (lambda p: p, "no .ndjson or .ndjson.gz files in the folder"),
        (lambda p: _file(p / "m.json", b"{not json"), "nor a Bulk Data manifest"),
        (lambda p: _file(p / "m.json", b'{"output": 1}'), "output: expected the Bulk Data"),
        (
            lambda p: _file(p / "m.json", b'{"output": [{"url": "https://x.org/a.ndjson"}]}'),
            "output[0].url: a https URL: download the files first",
        ),
        (
            lambda p: _file(p / "m.json", b'{"output": [{"url": "gone.ndjson"}]}'),
            "gone.ndjson: no such file",
        ),
    ],
)
def test_a_bad_source_is_one_clear_line(
    make: Any, expected: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = make(tmp_path)
    err = _one_line_error(["audit", str(source), "--out", str(tmp_path / "out")], capsys)
    assert expected in err
    assert not (tmp_path / "out").exists()


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_an_unreadable_file_is_one_clear_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # A link to nothing: unreadable for every user, root too (a file without read permission
    # is readable for root, who runs CI here).
    _write(tmp_path / "e", "Patient.ndjson", [_patient("a")])
    (tmp_path / "e" / "Condition.ndjson").symlink_to(tmp_path / "gone.ndjson")
    err = _one_line_error(["audit", str(tmp_path / "e"), "--out", str(tmp_path / "out")], capsys)
    assert "cannot read" in err


def test_bad_options_are_one_clear_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _write(tmp_path / "e", "Patient.ndjson", [_patient("a")])
    source = str(tmp_path / "e")
    assert "--from: after --to" in _one_line_error(
        ["audit", source, "--from", "2025-02-01", "--to", "2025-01-01"], capsys
    )
    assert "--to: 'soon' is not a valid date" in _one_line_error(
        ["audit", source, "--to", "soon"], capsys
    )
    assert "--min-cell: expected a count of 0 or more" in _one_line_error(
        ["audit", source, "--min-cell", "-1"], capsys
    )


@pytest.mark.usefixtures("fictional")
def test_the_audit_works_for_the_fictional_guideline(tmp_path: Path) -> None:
    """The fictional guideline's one indicator: a score that calls for a follow-up on day A
    (the first score plus the fictional scope's 365 days), by hand: 2 of the 3 adults."""

    def score(pid: str, when: str, value: int) -> bytes:
        return orjson.dumps(
            {
                "resourceType": "Observation",
                "id": f"s-{pid}",
                "status": "final",
                "subject": {"reference": f"Patient/{pid}"},
                "code": {"coding": [{"system": "urn:nkr:test:fiktiv", "code": "score"}]},
                "effectiveDateTime": when,
                "valueInteger": value,
            }
        )

    export = tmp_path / "export"
    _write(
        export,
        "Patient.ndjson",
        [_patient("a"), _patient("b"), _patient("c"), _patient("kid", born="2020-01-01")],
    )
    _write(
        export,
        "Observation.ndjson",
        [
            score("a", "2025-01-05", 8),
            score("b", "2025-02-05", 9),
            score("c", "2025-01-20", 3),
            score("kid", "2025-01-07", 9),
        ],
    )
    out = tmp_path / "out"
    summary = _audit(export, out, "--guideline", FICTIONAL_ID)
    assert (summary["episodes"], summary["in_scope"]) == (4, 3)
    assert summary["exclusions"] == {"under-18": 1}
    figures = (out / "figures.csv").read_text().splitlines()
    assert "fiktiv-hoej-score,overall,,2,3,0.6666666666666666," in "\n".join(figures)
    assert any(line.startswith("fiktiv-hoej-score,month,2025-01,1,2,") for line in figures)
    assert any(
        line.startswith("fiktiv-hoej-score,organization,Organization/o1,2,3,") for line in figures
    )


def test_a_batch_is_decoded_at_once_or_line_by_line_with_the_same_result() -> None:
    """judge_batch decodes a batch's lines in one call; a batch with a line that is not one
    resource (two on a line, a blank one, bad JSON) is read line by line: the line is a
    problem at its file and line, and the other patients are judged as before."""
    import pyarrow as pa

    from nkr._package import registry
    from nkr.audit._judge import LINES_SCHEMA, Judged, judge_batch

    package = registry().get("nkr-lumbal-radikulopati")  # the ICD-10 code of _diagnosis
    good = [
        ("Patient/a", 0, 1, _patient("a")),
        ("Patient/a", 1, 1, _diagnosis("a", "2025-03-01")),
        ("Patient/b", 0, 2, _patient("b")),
        ("Patient/b", 1, 2, _diagnosis("b", "2025-04-01")),
    ]

    def judged(rows: list[tuple[str, int, int, bytes]]) -> Judged:
        columns = list(zip(*rows, strict=True))
        batch = pa.RecordBatch.from_arrays(
            [
                pa.array(columns[0], pa.string()),
                pa.array(columns[1], pa.int32()),
                pa.array(columns[2], pa.int64()),
                pa.array([t.decode() for t in columns[3]], pa.string()),
            ],
            schema=LINES_SCHEMA,
        )
        out = Judged()
        judge_batch(package, batch, ["P.ndjson", "C.ndjson"], out)
        return out

    base = judged(good)
    assert base.patients == 2
    assert not base.problems
    assert [e.patient for e in base.episodes] == ["Patient/a", "Patient/b"]
    for bad in (_patient("x") + b" " + _patient("y"), b"   ", b'{"resourceType": "Patient",'):
        out = judged([*good[:2], ("Patient/b", 1, 7, bad), *good[2:]])
        assert out.patients == 2
        assert [(p.kind, p.file, p.line) for p in out.problems] == [("malformed", "C.ndjson", 7)]
        assert out.episodes == base.episodes
