"""The guideline as HL7 CPG 2.0 artifacts: every resource is structurally valid FHIR (the R4B
models of fhir.resources), and the CPG rules no offline validator checks here hold: fixed
types and profiles, action cardinalities, extension URLs and code lists, the pathway ->
strategy -> recommendation -> activity chain resolving inside the package, the citation, and
the grades as users see them agreeing with the FHIR codes."""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fhir.resources.R4B import get_fhir_model_class

from nkr._cli import main
from nkr._package import registry
from nkr.fhir._artifacts import Artifacts, build_artifacts, bundle, package_bytes
from tests.guidelines.install import fictional

__all__ = ["fictional"]

CPG = "http://hl7.org/fhir/uv/cpg"
PDT = "http://terminology.hl7.org/CodeSystem/plan-definition-type"
EXT_STRENGTH = "http://hl7.org/fhir/StructureDefinition/cqf-strengthOfRecommendation"
EXT_QUALITY = "http://hl7.org/fhir/StructureDefinition/cqf-qualityOfEvidence"
EXT_DIRECTION = f"{CPG}/StructureDefinition/cpg-directionOfRecommendation"
STRENGTH = "http://terminology.hl7.org/CodeSystem/recommendation-strength"
QUALITY = "http://terminology.hl7.org/CodeSystem/evidence-quality"
DIRECTION = f"{CPG}/CodeSystem/cpg-recommendation-direction-cs"
PROCESS = f"{CPG}/CodeSystem/cpg-common-process-cs"
GOOD_PRACTICE = "urn:nkr:codesystem:nkr-recommendation-strength"
LUMBAR = "nkr-lumbal-radikulopati"

# The quick guide (Sundhedsstyrelsen, version 1.1), by hand: each recommendation's symbols as
# printed before and after it, and its legend's meaning of those symbols in CPG codes.
QUICK_GUIDE = {
    "physical-activity": ("↑", "⊕⊕"),
    "supervised-exercise": ("↑", "⊕⊕"),
    "specific-exercise": ("↑", "⊕"),
    "combined-exercise": ("√", ""),
    "manual-mobilisation": ("↑", "⊕"),
    "acupuncture": ("√", ""),
    "exercise-or-mobilisation": ("↑", "⊕"),
    "mri": ("↓", "⊕"),
    "glucocorticoid-injection": ("↓", "⊕"),
    "spine-surgeon-assessment": ("√", ""),
}
# "↑↑ = en stærk anbefaling for ... ↓ = en svag/betinget anbefaling imod"; √ = god praksis.
LEGEND_STRENGTH = {
    "↑↑": ("for", (STRENGTH, "strong")),
    "↓↓": ("against", (STRENGTH, "strong")),
    "↑": ("for", (STRENGTH, "weak")),
    "↓": ("against", (STRENGTH, "weak")),
}
# "(⊕⊕⊕⊕) = høj, (⊕⊕⊕) = moderat, (⊕⊕) = lav, (⊕) = meget lav"; none for good practice.
LEGEND_CERTAINTY = {"⊕⊕⊕⊕": "high", "⊕⊕⊕": "moderate", "⊕⊕": "low", "⊕": "very-low", "": None}
# The direction of the good-practice statements, from their wording ("Det er ikke god praksis
# ... akupunktur": against).
GOOD_PRACTICE_DIRECTION = {
    "combined-exercise": "for",
    "acupuncture": "against",
    "spine-surgeon-assessment": "for",
}


@pytest.fixture(scope="module")
def lumbar() -> Artifacts:
    return build_artifacts(registry().get(LUMBAR))


def _plans(a: Artifacts, profile: str) -> list[dict[str, Any]]:
    return [
        r
        for r in a.of("PlanDefinition")
        if r["meta"]["profile"] == [f"{CPG}/StructureDefinition/{profile}"]
    ]


def _ext(action: dict[str, Any], url: str) -> list[tuple[str, str]]:
    return [
        (c["system"], c["code"])
        for e in action.get("extension", [])
        if e["url"] == url
        for c in e["valueCodeableConcept"]["coding"]
    ]


def _english(element: dict[str, Any]) -> str:
    (translation,) = element["extension"]
    parts = {e["url"]: e for e in translation["extension"]}
    assert translation["url"] == "http://hl7.org/fhir/StructureDefinition/translation"
    assert parts["lang"]["valueCode"] == "en"
    return str(parts["content"]["valueString"])


def _canonicals(value: Any) -> Iterator[str]:
    """Every canonical a resource points at (definitions, depends-on, instantiates)."""
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "definitionCanonical" or (key == "resource" and isinstance(inner, str)):
                yield inner
            else:
                yield from _canonicals(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from _canonicals(inner)


def test_every_resource_parses_as_fhir_r4b(lumbar: Artifacts) -> None:
    for resource in lumbar.resources:
        model = get_fhir_model_class(resource["resourceType"])
        model.model_validate(resource)
    get_fhir_model_class("Bundle").model_validate(bundle(lumbar))


def test_the_resources_are_one_pathway_seven_strategies_ten_recommendations_nine_activities(
    lumbar: Artifacts,
) -> None:
    assert len(_plans(lumbar, "cpg-pathwaydefinition")) == 1
    assert len(_plans(lumbar, "cpg-strategydefinition")) == 7
    assert len(_plans(lumbar, "cpg-recommendationdefinition")) == 10
    activities = lumbar.of("ActivityDefinition")
    assert len(activities) == 9
    assert {a["meta"]["profile"][0] for a in activities} == {
        f"{CPG}/StructureDefinition/cpg-computableactivity"
    }
    assert len(lumbar.of("ValueSet")) == 11
    ids = [(r["resourceType"], r["id"]) for r in lumbar.resources]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(
    ("profile", "code"),
    [
        ("cpg-pathwaydefinition", "clinical-protocol"),
        ("cpg-strategydefinition", "workflow-definition"),
        ("cpg-recommendationdefinition", "eca-rule"),
    ],
)
def test_each_plan_definition_has_its_profiles_fixed_type(
    lumbar: Artifacts, profile: str, code: str
) -> None:
    for plan in _plans(lumbar, profile):
        assert [(c["system"], c["code"]) for c in plan["type"]["coding"]] == [(PDT, code)]
        # Metadata from the guideline: not in force, so retired.
        assert plan["status"] == "retired"
        assert plan["version"] == "1.1"
        assert plan["publisher"] == "Sundhedsstyrelsen"
        assert plan["date"] == "2019-02-28"
        assert plan["url"] == f"urn:nkr:plandefinition:{plan['id']}"
        assert plan["name"][0].isupper()
        assert plan["name"].isalnum()


def test_recommendation_definitions_have_one_action_with_wording_scope_and_activity(
    lumbar: Artifacts,
) -> None:
    g = registry().get(LUMBAR).content
    activities = {a["url"] for a in lumbar.of("ActivityDefinition")}
    for rec in g.recommendations:
        plan = lumbar.recommendations[rec.id]
        (action,) = plan["action"]
        assert action["title"] == rec.label.da
        assert action["description"] == rec.wording.da
        assert _english(action["_description"]) == rec.wording.en
        (condition,) = action["condition"]
        assert condition["kind"] == "applicability"
        assert condition["expression"]["language"] == "text/plain"
        assert condition["expression"]["expression"] == g.scope.text.da
        assert _english(condition["expression"]["_expression"]) == g.scope.text.en
        targets = (
            [action["definitionCanonical"]]
            if "definitionCanonical" in action
            else [a["definitionCanonical"] for a in action["action"]]
        )
        assert targets
        assert set(targets) <= activities


def test_two_recommendations_act_on_two_activities(lumbar: Artifacts) -> None:
    pa = lumbar.recommendations["physical-activity"]["action"][0]
    assert [a["definitionCanonical"] for a in pa["action"]] == [
        f"urn:nkr:activitydefinition:{LUMBAR}-information-physical-activity",
        f"urn:nkr:activitydefinition:{LUMBAR}-bed-rest",
    ]
    eom = lumbar.recommendations["exercise-or-mobilisation"]["action"][0]
    assert eom["selectionBehavior"] == "any"
    assert len(eom["action"]) == 2
    (mri,) = lumbar.recommendations["mri"]["action"]
    assert mri["definitionCanonical"] == f"urn:nkr:activitydefinition:{LUMBAR}-mri"


@pytest.mark.parametrize("rec_id", sorted(QUICK_GUIDE))
def test_symbols_shown_to_users_and_fhir_grades_agree(lumbar: Artifacts, rec_id: str) -> None:
    strength_symbol, certainty_symbol = QUICK_GUIDE[rec_id]
    rec = registry().get(LUMBAR).content.by_id[rec_id]
    # What users see is the quick guide's print.
    assert (rec.strength_symbol, rec.certainty_symbol) == (strength_symbol, certainty_symbol)
    (action,) = lumbar.recommendations[rec_id]["action"]
    if strength_symbol == "√":
        direction = GOOD_PRACTICE_DIRECTION[rec_id]
        strength = (GOOD_PRACTICE, "good-practice")
    else:
        direction, strength = LEGEND_STRENGTH[strength_symbol]
    assert _ext(action, EXT_STRENGTH) == [strength]
    assert _ext(action, EXT_DIRECTION) == [(DIRECTION, direction)]
    quality = LEGEND_CERTAINTY[certainty_symbol]
    assert _ext(action, EXT_QUALITY) == ([] if quality is None else [(QUALITY, quality)])


def test_extension_codes_are_in_their_code_lists(lumbar: Artifacts) -> None:
    allowed = {
        EXT_STRENGTH: {(STRENGTH, "strong"), (STRENGTH, "weak"), (GOOD_PRACTICE, "good-practice")},
        EXT_QUALITY: {(QUALITY, c) for c in ("high", "moderate", "low", "very-low")},
        EXT_DIRECTION: {(DIRECTION, "for"), (DIRECTION, "against")},
    }
    for plan in _plans(lumbar, "cpg-recommendationdefinition"):
        (action,) = plan["action"]
        urls = [e["url"] for e in action["extension"]]
        assert set(urls) <= set(allowed)
        assert len(urls) == len(set(urls))
        for url, codes in allowed.items():
            assert set(_ext(action, url)) <= codes
    good_practice = next(r for r in lumbar.of("CodeSystem") if r["url"] == GOOD_PRACTICE)
    assert [c["code"] for c in good_practice["concept"]] == ["good-practice"]


def test_strategies_and_the_pathway_follow_the_cpg_action_rules(lumbar: Artifacts) -> None:
    forbidden = {
        "input",
        "output",
        "type",
        "groupingBehavior",
        "requiredBehavior",
        "precheckBehavior",
        "cardinalityBehavior",
        "transform",
        "dynamicValue",
    }
    g = registry().get(LUMBAR).content
    for plan in [
        *_plans(lumbar, "cpg-strategydefinition"),
        *_plans(lumbar, "cpg-pathwaydefinition"),
    ]:
        assert plan["action"]
        for action in plan["action"]:
            assert action["title"]
            assert action["description"]
            (code,) = action["code"]
            (coding,) = code["coding"]
            assert coding["system"] == PROCESS
            assert not forbidden & set(action)
    (pathway,) = _plans(lumbar, "cpg-pathwaydefinition")
    assert [a["title"] for a in pathway["action"]] == [s.heading.da for s in g.sections]


def test_pathway_strategy_recommendation_activity_chain_resolves_in_the_package(
    lumbar: Artifacts,
) -> None:
    by_url = {r["url"]: r for r in lumbar.resources}
    for resource in lumbar.resources:
        for canonical in _canonicals(resource):
            assert canonical in by_url, f"{resource['id']}: {canonical} is not in the package"
    (pathway,) = _plans(lumbar, "cpg-pathwaydefinition")
    reached: set[str] = set()
    for section in pathway["action"]:
        strategy = by_url[section["definitionCanonical"]]
        assert strategy["meta"]["profile"][0].endswith("cpg-strategydefinition")
        for step in strategy["action"]:
            rec = by_url[step["definitionCanonical"]]
            assert rec["meta"]["profile"][0].endswith("cpg-recommendationdefinition")
            reached.add(rec["id"])
            (action,) = rec["action"]
            for target in [
                action.get("definitionCanonical"),
                *(a["definitionCanonical"] for a in action.get("action", [])),
            ]:
                if target is not None:
                    assert by_url[target]["resourceType"] == "ActivityDefinition"
    assert reached == {p["id"] for p in _plans(lumbar, "cpg-recommendationdefinition")}
    # The pathway points at strategies only (the IG lets no pathway point at a recommendation).
    assert all(
        by_url[a["definitionCanonical"]] not in _plans(lumbar, "cpg-recommendationdefinition")
        for a in pathway["action"]
    )


def test_every_plan_definition_cites_the_guideline_and_names_grade(lumbar: Artifacts) -> None:
    for plan in lumbar.of("PlanDefinition"):
        citation, rating = plan["relatedArtifact"]
        assert citation["type"] == "citation"
        assert citation["url"] == "https://app.magicapp.org/summary/guideline_5154.html"
        assert citation["citation"].startswith("Sundhedsstyrelsen. National klinisk retningslinje")
        assert rating["type"] == "documentation"
        assert rating["display"].startswith("GRADE: ")
        assert rating["url"] == "https://www.gradeworkinggroup.org/"


def test_activities_are_coded_from_their_value_sets(lumbar: Artifacts) -> None:
    valuesets = {v["url"]: v for v in lumbar.of("ValueSet")}
    kinds = {a["id"].removeprefix(f"{LUMBAR}-"): a["kind"] for a in lumbar.of("ActivityDefinition")}
    assert kinds == {
        "information-physical-activity": "CommunicationRequest",
        "bed-rest": "ServiceRequest",
        "supervised-exercise": "ServiceRequest",
        "specific-exercise": "ServiceRequest",
        "manual-mobilisation": "ServiceRequest",
        "acupuncture": "ServiceRequest",
        "mri": "ServiceRequest",
        "glucocorticoid-injection": "ServiceRequest",
        "spine-surgeon-referral": "ServiceRequest",
    }
    for activity in lumbar.of("ActivityDefinition"):
        for artifact in activity.get("relatedArtifact", []):
            vs = valuesets[artifact["resource"]]
            codes = {(c["system"], c["code"]) for c in vs["expansion"]["contains"]}
            assert {(c["system"], c["code"]) for c in activity["code"]["coding"]} == codes
    bed_rest = next(a for a in lumbar.of("ActivityDefinition") if a["id"].endswith("bed-rest"))
    assert bed_rest["doNotPerform"] is True


def test_the_npm_package_holds_package_json_and_each_resource(lumbar: Artifacts) -> None:
    with tarfile.open(fileobj=io.BytesIO(package_bytes(lumbar)), mode="r:gz") as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    manifest = json.loads(files.pop("package/package.json"))
    assert manifest["name"] == "nkr.lumbal-radikulopati"
    assert manifest["version"] == "1.1.0"
    assert manifest["fhirVersions"] == ["4.0.1"]
    assert manifest["dependencies"] == {"hl7.fhir.r4.core": "4.0.1", "hl7.fhir.uv.cpg": "2.0.0"}
    index = json.loads(files.pop("package/.index.json"))
    assert len(index["files"]) == len(lumbar.resources) == len(files)
    for resource in lumbar.resources:
        name = f"package/{resource['resourceType']}-{resource['id']}.json"
        assert json.loads(files[name]) == resource


def test_nkr_export_fhir_writes_the_bundle_and_the_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cpg.json"
    assert main(["export", "fhir", "--out", str(out)]) == 0
    written = json.loads(out.read_text(encoding="utf-8"))
    assert written["type"] == "collection"
    assert len(written["entry"]) == len(build_artifacts(registry().get(LUMBAR)).resources)
    assert main(["export", "fhir", "--package", str(tmp_path)]) == 0
    assert (tmp_path / "nkr.lumbal-radikulopati-1.1.0.tgz").is_file()
    capsys.readouterr()


@pytest.mark.parametrize(
    "args",
    [
        ["--package", "/no/such/folder"],
        ["--out", "/no/such/folder/cpg.json"],
        ["--guideline", "no-such"],
        ["--out", "x.json", "--package", "."],
    ],
)
def test_nkr_export_fhir_refuses_bad_options_in_one_line(
    args: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["export", "fhir", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("nkr: error: ")
    assert err.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_the_canonical_base_setting_puts_every_canonical_under_it() -> None:
    a = build_artifacts(registry().get(LUMBAR), "https://fhir.example.dk/nkr")
    # Only the code systems the cards and value sets have always used keep their URNs.
    kept = {"urn:nkr:cds-card-topic", "urn:nkr:cds-override-reason", "urn:nkr:local-orders"}
    for resource in a.resources:
        assert resource["url"].startswith("https://fhir.example.dk/nkr/") or resource["url"] in kept
    plan = a.recommendations["mri"]
    assert plan["url"] == f"https://fhir.example.dk/nkr/PlanDefinition/{LUMBAR}-mri"
    by_url = {r["url"] for r in a.resources}
    for resource in a.resources:
        assert set(_canonicals(resource)) <= by_url


@pytest.mark.usefixtures("fictional")
def test_the_fictional_guideline_exports_too() -> None:
    a = build_artifacts(registry().get("test-fiktiv-retningslinje"))
    for resource in a.resources:
        get_fhir_model_class(resource["resourceType"]).model_validate(resource)
    assert len(_plans(a, "cpg-recommendationdefinition")) == 3
    assert len(_plans(a, "cpg-strategydefinition")) == 3
    assert {r["kind"] for r in a.of("ActivityDefinition")} == {
        "ServiceRequest",
        "CommunicationRequest",
    }
    (action,) = a.recommendations["fiktiv-samtale"]["action"]
    assert _ext(action, EXT_STRENGTH) == [(STRENGTH, "strong")]
    assert _ext(action, EXT_QUALITY) == [(QUALITY, "moderate")]
    by_url = {r["url"] for r in a.resources}
    for resource in a.resources:
        assert set(_canonicals(resource)) <= by_url
