"""The audit recovers the synthetic export's ground truth exactly: every indicator, every
stratum, the episodes, the exclusions and the injected problems. The ground truth is written
by ``nkr synth`` from its own plan, never by nkr's reader or rules."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from nkr._cli import main

STRATA = {"month": "by_month", "organization": "by_organization"}


def _synth(out: Path, *extra: str) -> dict[str, Any]:
    assert main(["synth", "--patients", "1500", "--seed", "7", "--out", str(out), *extra]) == 0
    truth: dict[str, Any] = json.loads((out / "ground_truth.json").read_text())
    return truth


def _figures(out: Path) -> dict[tuple[str, str, str], tuple[int, int]]:
    with (out / "figures.csv").open(encoding="utf-8") as f:
        return {
            (r["indicator"], r["stratum"], r["key"]): (int(r["numerator"]), int(r["denominator"]))
            for r in csv.DictReader(f)
        }


def _expected(truth: dict[str, Any]) -> dict[tuple[str, str, str], tuple[int, int]]:
    found = {}
    for ind, strata in truth["indicators"].items():
        found[(ind, "overall", "")] = tuple(strata["overall"])
        for stratum, key in STRATA.items():
            for value, counts in strata[key].items():
                found[(ind, stratum, value)] = tuple(counts)
    return found


@pytest.mark.parametrize("form", ["folder", "manifest-gzip"])
def test_the_audit_recovers_the_ground_truth(
    form: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    export = tmp_path / "export"
    truth = _synth(export, "--problems", *(["--gzip"] if form == "manifest-gzip" else []))
    source = export if form == "folder" else export / "manifest.json"
    out = tmp_path / "out"
    # --min-cell 0: no cell hidden, so that every count can be compared.
    assert main(["audit", str(source), "--out", str(out), "--min-cell", "0"]) == 0
    assert "1,500 patients" in capsys.readouterr().out

    assert _figures(out) == _expected(truth)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["patients"] == truth["patients"]
    assert summary["episodes"] == truth["episodes"]
    assert summary["in_scope"] == truth["in_scope"]
    assert summary["exclusions"] == {k: v for k, v in truth["exclusions"].items() if v}
    counts = summary["problem_counts"]
    assert {k: counts[k] for k in truth["problems"]} == truth["problems"]
    assert counts["invalid"] == 0
    assert len(summary["problems"]) == sum(truth["problems"].values())
    assert all(
        p["file"].endswith((".ndjson", ".ndjson.gz")) and p["line"] > 0 for p in summary["problems"]
    )

    episodes = pq.read_table(out / "episodes.parquet")
    assert episodes.num_rows == truth["episodes"]
    assert episodes.schema.metadata[b"nkr.contains"] == b"patient-references"
    assert sum(episodes.column("in_scope").to_pylist()) == truth["in_scope"]


def test_the_period_selects_episodes_by_their_start(tmp_path: Path) -> None:
    export = tmp_path / "export"
    truth = _synth(export)
    months = sorted(truth["indicators"]["mri"]["by_month"])
    first, last = months[2], months[5]
    out = tmp_path / "out"
    args = ["--from", f"{first}-01", "--to", f"{last}-28", "--min-cell", "0"]
    assert main(["audit", str(export), "--out", str(out), *args]) == 0
    figures = _figures(out)
    for ind, strata in truth["indicators"].items():
        chosen = {m: c for m, c in strata["by_month"].items() if first <= m <= last}
        if chosen:
            # The last month is cut at its 28th day: only its earlier months add up exactly.
            seen = {k: v for (i, s, k), v in figures.items() if i == ind and s == "month"}
            assert set(seen) == set(chosen)
            for m in chosen:
                if m != last:
                    assert seen[m] == tuple(chosen[m])
    episodes = pq.read_table(out / "episodes.parquet").column("start").to_pylist()
    assert episodes
    assert all(f"{first}-01" <= d.isoformat() <= f"{last}-28" for d in episodes)


def test_small_cells_are_hidden_in_every_shared_output(tmp_path: Path) -> None:
    """With the default setting (5), a stratum is hidden exactly where the ground truth's
    counts make it small (a denominator below 5, or a numerator or its complement above 0
    and below 5): its counts are in no shared output; the rest are shown as they are."""
    export = tmp_path / "export"
    truth = _synth(export)
    out = tmp_path / "out"
    assert main(["audit", str(export), "--out", str(out)]) == 0
    with (out / "figures.csv").open(encoding="utf-8") as f:
        rows = {(r["indicator"], r["stratum"], r["key"]): r for r in csv.DictReader(f)}
    expected = _expected(truth)
    assert set(rows) == set(expected)
    hidden = 0
    for key, (num, den) in expected.items():
        small = den < 5 or 0 < num < 5 or 0 < den - num < 5
        row = rows[key]
        assert row["suppressed"] == ("true" if small else "false")
        if small:
            hidden += 1
            assert [row[c] for c in ("numerator", "denominator", "proportion", "low", "high")] == [
                ""
            ] * 5
        else:
            assert (int(row["numerator"]), int(row["denominator"])) == (num, den)
    assert hidden > 0
    # The report and the MeasureReports are written beside them.
    assert (out / "report.html").read_text(encoding="utf-8").lower().startswith("<!doctype html>")
    assert json.loads((out / "measures.json").read_text())["resourceType"] == "Bundle"
