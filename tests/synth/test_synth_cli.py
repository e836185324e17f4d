"""``nkr synth`` on the command line: what it writes, and one line for each user error."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from nkr._cli import main


def fails(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    assert main(["synth", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1
    assert captured.err.startswith("nkr: error: ")
    assert "Traceback" not in captured.err
    return captured.err


def test_synth_writes_the_export_and_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "export"
    assert main(["synth", "--patients", "40", "--out", str(out), "--seed", "5"]) == 0
    said = capsys.readouterr().out
    assert said.startswith("40 patients, ")
    assert str(out) in said
    truth = json.loads((out / "ground_truth.json").read_text())
    assert truth["patients"] == 40
    assert truth["seed"] == 5
    assert (out / "Condition.ndjson").is_file()
    # An empty folder is fine too (and filled).
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["synth", "--patients", "3", "--out", str(empty), "--gzip"]) == 0
    assert (empty / "Patient.ndjson.gz").is_file()


@pytest.mark.parametrize("n", ["0", "-4", "100000001"])
def test_a_bad_number_of_patients_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], n: str
) -> None:
    err = fails(capsys, "--patients", n, "--out", str(tmp_path / "out"))
    assert "--patients" in err
    assert list(tmp_path.iterdir()) == []


def test_a_number_that_is_no_number_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert "--patients" in fails(capsys, "--patients", "many", "--out", str(tmp_path / "o"))


def test_an_out_that_cannot_be_written_is_one_line_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "kept.txt").write_text("mine")
    assert "is not empty" in fails(capsys, "--patients", "5", "--out", str(full))
    assert [p.name for p in full.iterdir()] == ["kept.txt"]
    a_file = tmp_path / "file"
    a_file.write_text("x")
    assert "not a folder" in fails(capsys, "--patients", "5", "--out", str(a_file))
    assert "not a folder" in fails(capsys, "--patients", "5", "--out", str(a_file / "out"))
    assert "--out" in fails(capsys, "--patients", "5", "--out", "/proc/nkr-synth-out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "full"]


def test_an_unknown_guideline_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    err = fails(capsys, "--patients", "5", "--out", str(tmp_path / "o"), "--guideline", "nope")
    assert "--guideline" in err


def test_the_command_line_process_exits_non_zero_without_a_traceback(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "nkr", "synth", "--patients", "0", "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert "Traceback" not in done.stderr
