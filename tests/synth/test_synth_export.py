"""``nkr synth``'s export: its files, manifest, codes and ground truth, and its determinism."""

from __future__ import annotations

import datetime as dt
import gzip
import importlib
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from nkr import _synth
from nkr._package import registry
from nkr._synth import PROBLEMS, synthesize
from nkr.fhir._read import BY_TYPE, decode_resource
from nkr.guidelines.lumbar_radiculopathy.synth import NOISE_DIAGNOSES, NOISE_VITALS
from tests.synth._recount import MEMBERS, recount

N = 600


def export(folder: Path, patients: int = N, seed: int = 7, **options: Any) -> _synth.Written:
    package = registry().get("nkr-lumbal-radikulopati")
    return synthesize(package.synthesis, package.id, patients, folder, seed=seed, **options)


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> _synth.Written:
    return export(tmp_path_factory.mktemp("synth") / "out")


def data_lines(folder: Path) -> list[tuple[str, bytes]]:
    """(file name, line) of every NDJSON line in the folder."""
    found: list[tuple[str, bytes]] = []
    for path in sorted(folder.glob("*.ndjson*")):
        opener: Any = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            found.extend((path.name, line) for line in f)
    return found


def files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_the_manifest_is_a_bulk_data_completion_of_the_files(written: _synth.Written) -> None:
    manifest = json.loads((written.folder / "manifest.json").read_text())
    assert set(manifest) == {"transactionTime", "request", "requiresAccessToken", "output", "error"}
    assert manifest["requiresAccessToken"] is False
    assert manifest["error"] == []
    assert manifest["request"].startswith("https://")
    assert "$export" in manifest["request"]
    when = dt.datetime.fromisoformat(manifest["transactionTime"])
    lines = data_lines(written.folder)
    per_file = Counter(name for name, _ in lines)
    assert {o["url"] for o in manifest["output"]} == set(per_file)
    for entry in manifest["output"]:
        assert entry["count"] == per_file[entry["url"]]
        assert entry["url"].split(".")[0] == entry["type"]
    assert {o["type"] for o in manifest["output"]} >= {
        "Organization",
        "Patient",
        "Encounter",
        "Condition",
        "Observation",
        "Procedure",
        "ServiceRequest",
    }
    # Every date the export holds is before its transaction time.
    dates = [
        v
        for _, line in lines
        for k, v in json.loads(line).items()
        if isinstance(v, str) and k in {"onsetDateTime", "effectiveDateTime", "authoredOn"}
    ]
    assert max(dates) < when.date().isoformat()


def test_every_line_is_fhir_the_reader_decodes_of_its_files_type(
    written: _synth.Written,
) -> None:
    for name, line in data_lines(written.folder):
        resource = decode_resource(line)
        assert type(resource) is BY_TYPE[name.split(".")[0]]
        assert resource.id


def test_every_line_validates_as_fhir(written: _synth.Written) -> None:
    # fhir.resources' R4B models (R4B changed none of these types' fields that nkr writes).
    models: dict[str, Any] = {}
    for name, line in data_lines(written.folder)[::3]:
        kind = name.split(".")[0]
        if kind not in models:
            models[kind] = getattr(
                importlib.import_module(f"fhir.resources.R4B.{kind.lower()}"), kind
            )
        models[kind].model_validate_json(line)


def test_ids_are_unique_per_type_and_subjects_are_patients_of_the_export(
    written: _synth.Written,
) -> None:
    seen: set[tuple[str, str]] = set()
    patients = set()
    subjects = set()
    for _, line in data_lines(written.folder):
        r = json.loads(line)
        key = (r["resourceType"], r["id"])
        assert key not in seen
        seen.add(key)
        if r["resourceType"] == "Patient":
            patients.add(r["id"])
        elif "subject" in r:
            subjects.add(r["subject"]["reference"].removeprefix("Patient/"))
    # A few patients have no Patient resource (an exclusion of the spec), none the other way.
    assert patients <= subjects
    assert 0 < len(subjects - patients) < N * 0.02


def test_codes_come_only_from_the_value_sets_and_the_documented_noise(
    written: _synth.Written,
) -> None:
    noise = {("http://hl7.org/fhir/sid/icd-10", c) for c, _ in NOISE_DIAGNOSES}
    noise |= {("http://loinc.org", c) for c, *_ in NOISE_VITALS}
    used: Counter[str] = Counter()
    for _, line in data_lines(written.folder):
        r = json.loads(line)
        for coding in (r.get("code") or {}).get("coding", []):
            pair = (coding["system"], coding["code"])
            assert pair in MEMBERS or pair in noise, pair
            used.update(MEMBERS.get(pair, {"noise"}))
    # Every value set of the guideline is used.
    assert set(used) == {v for ids in MEMBERS.values() for v in ids} | {"noise"}


def test_the_ground_truth_is_what_a_recount_of_the_files_finds(written: _synth.Written) -> None:
    truth = json.loads((written.folder / "ground_truth.json").read_text())
    assert truth["guideline"] == "nkr-lumbal-radikulopati"
    assert truth["seed"] == 7
    assert "problems" not in truth
    found = recount(line for _, line in data_lines(written.folder))
    assert {k: truth[k] for k in found} == found
    # A mix worth auditing: every exclusion, and every indicator met by some, not all.
    assert truth["patients"] == N
    assert all(n > 0 for n in truth["exclusions"].values())
    for indicator in truth["indicators"].values():
        num, den = indicator["overall"]
        assert 0 < num < den
    assert len(truth["indicators"]["mri"]["by_organization"]) >= 8
    assert len(truth["indicators"]["mri"]["by_month"]) == 24


def test_organisations_differ_in_adherence(tmp_path: Path) -> None:
    truth = export(tmp_path / "out", 4000, seed=3).truth
    shares = {
        org: num / den
        for org, (num, den) in truth["indicators"]["mri"]["by_organization"].items()
        if org != "unknown"
    }
    assert max(shares.values()) > 2.5 * min(shares.values())


def test_the_same_seed_gives_the_same_bytes_and_another_seed_other_bytes(
    tmp_path: Path, written: _synth.Written
) -> None:
    again = export(tmp_path / "again")
    assert files(again.folder) == files(written.folder)
    other = export(tmp_path / "other", seed=8)
    assert files(other.folder)["Condition.ndjson"] != files(written.folder)["Condition.ndjson"]


def test_parts_are_the_same_whatever_the_number_of_workers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_synth, "PART_SIZE", 100)
    one = export(tmp_path / "one", 350, workers=1, compress=True)
    two = export(tmp_path / "two", 350, workers=2, compress=True)
    assert files(one.folder) == files(two.folder)
    assert "Condition.4.ndjson.gz" in files(one.folder)
    truth = json.loads((one.folder / "ground_truth.json").read_text())
    assert truth["patients"] == 350
    found = recount(line for _, line in data_lines(one.folder))
    assert {k: truth[k] for k in found} == found


def test_problems_are_injected_and_counted(tmp_path: Path) -> None:
    written = export(tmp_path / "out", 2500, problems=True)
    truth = json.loads((written.folder / "ground_truth.json").read_text())
    assert truth["problems"] == {"malformed": 3, "no-patient": 2, "unknown-type": 2}
    kinds: Counter[str] = Counter()
    lines = data_lines(written.folder)
    for _, line in lines:
        try:
            r = json.loads(line)
        except json.JSONDecodeError:
            kinds["malformed"] += 1
            continue
        if r["resourceType"] not in BY_TYPE:
            kinds["unknown-type"] += 1
            assert r["subject"]["reference"] == "Patient/p00000000"
        elif r["resourceType"] not in {"Patient", "Organization"} and "subject" not in r:
            kinds["no-patient"] += 1
    assert kinds == {k: len(v) for k, v in PROBLEMS.items()}
    # In the middle of a file, after the first block of patients.
    names = [n for n, line in lines if b"problem-" in line]
    assert set(names) == {"Observation.ndjson"}


def test_the_fictional_guideline_synthesizes_too(tmp_path: Path, fictional: None) -> None:
    package = registry().get("test-fiktiv-retningslinje")
    written = synthesize(package.synthesis, package.id, 50, tmp_path / "out", seed=2)
    truth = written.truth
    assert truth["patients"] == 50
    assert truth["episodes"] == 50
    assert truth["indicators"] == {}
    for name, line in data_lines(written.folder):
        assert type(decode_resource(line)) is BY_TYPE[name.split(".")[0]]
    record_types = {
        o["type"] for o in json.loads((tmp_path / "out/manifest.json").read_text())["output"]
    }
    assert record_types == {"Patient", "Observation"}
