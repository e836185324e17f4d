"""A guideline as computable FHIR R4 artifacts (HL7 CPG 2.0.0), built from its data.

One CPGRecommendationDefinition (PlanDefinition, ``eca-rule``) per recommendation, one
CPGStrategyDefinition (``workflow-definition``) per section pointing at its recommendations,
one CPGPathwayDefinition (``clinical-protocol``) pointing at the strategies, one
CPGComputableActivityDefinition per activity of the guideline's ``cpg.toml``, its value sets,
and the project's CodeSystems (the good-practice strength, the recommendation statuses of
``$apply``, card topics, override reasons and local placeholder codes). Nothing here knows a
guideline: every sentence and code comes from the package (``content``, ``cpg``,
``valuesets``, ``texts``). docs/fhir-artifacts.md describes the choices.

Out: a ``collection`` Bundle (:func:`bundle`) or a FHIR NPM package (:func:`write_package`).
"""

from __future__ import annotations

import io
import json
import re
import sys
import tarfile
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, cast

from nkr._assessment import RecStatus
from nkr._cpg import Activity
from nkr._errors import InputError
from nkr._files import write_atomically
from nkr._guideline import Guideline, Kind, Localized, Recommendation
from nkr.cdshooks._kit import OVERRIDE_REASON_SYSTEM, TOPIC_SYSTEM
from nkr.fhir._valuesets import LOCAL_ORDERS_SYSTEM, ValueSets

if TYPE_CHECKING:
    from nkr._package import GuidelinePackage

Resource = dict[str, Any]

CPG: Final = "http://hl7.org/fhir/uv/cpg"
PROFILE_RECOMMENDATION: Final = f"{CPG}/StructureDefinition/cpg-recommendationdefinition"
PROFILE_STRATEGY: Final = f"{CPG}/StructureDefinition/cpg-strategydefinition"
PROFILE_PATHWAY: Final = f"{CPG}/StructureDefinition/cpg-pathwaydefinition"
PROFILE_ACTIVITY: Final = f"{CPG}/StructureDefinition/cpg-computableactivity"
PLAN_DEFINITION_TYPE: Final = "http://terminology.hl7.org/CodeSystem/plan-definition-type"
COMMON_PROCESS: Final = f"{CPG}/CodeSystem/cpg-common-process-cs"
DIRECTION_SYSTEM: Final = f"{CPG}/CodeSystem/cpg-recommendation-direction-cs"
STRENGTH_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/recommendation-strength"
QUALITY_SYSTEM: Final = "http://terminology.hl7.org/CodeSystem/evidence-quality"
EXT_STRENGTH: Final = "http://hl7.org/fhir/StructureDefinition/cqf-strengthOfRecommendation"
EXT_QUALITY: Final = "http://hl7.org/fhir/StructureDefinition/cqf-qualityOfEvidence"
EXT_DIRECTION: Final = f"{CPG}/StructureDefinition/cpg-directionOfRecommendation"
EXT_TRANSLATION: Final = "http://hl7.org/fhir/StructureDefinition/translation"
EXT_CAPABILITY: Final = f"{CPG}/StructureDefinition/cpg-knowledgeCapability"
EXT_LEVEL: Final = f"{CPG}/StructureDefinition/cpg-knowledgeRepresentationLevel"

# The project's own CodeSystems (ids; their url follows the canonical base).
GOOD_PRACTICE_CS: Final = "nkr-recommendation-strength"
GOOD_PRACTICE_CODE: Final = "good-practice"
STATUS_CS: Final = "nkr-recommendation-status"

_STATUS_DISPLAY: Final = {
    RecStatus.APPLIES: "Applies now",
    RecStatus.CAUTION: "Applies now, with a caution about what is planned",
    RecStatus.DUE: "Due",
    RecStatus.OVERDUE: "Overdue",
    RecStatus.DONE: "Referred or done",
    RecStatus.NOT_APPLICABLE: "Not applicable",
}
_QUALITY_DISPLAY: Final = {
    "high": "High quality",
    "moderate": "Moderate quality",
    "low": "Low quality",
    "very-low": "Very low quality",
}
_FHIR_ID: Final = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")


@dataclass(frozen=True, slots=True)
class Canonicals:
    """Canonical URLs: ``<base>/<Type>/<id>`` under ``NKR_CANONICAL_BASE``; unset, local URNs
    ``urn:nkr:<type>:<id>`` in the namespace nkr's value sets have always used
    (``urn:nkr:valueset:<id>``), which pretend to be no published address."""

    base: str | None = None

    def url(self, resource_type: str, resource_id: str) -> str:
        if self.base is None:
            return f"urn:nkr:{resource_type.lower()}:{resource_id}"
        return f"{self.base}/{resource_type}/{resource_id}"


@dataclass(frozen=True, slots=True)
class Artifacts:
    """A guideline's artifacts, and what ``$apply`` needs to find its way among them."""

    guideline: Guideline
    canonicals: Canonicals
    resources: tuple[Resource, ...]
    # PlanDefinition id -> the ids of the recommendations it covers, in the guideline's order.
    covers: Mapping[str, tuple[str, ...]]
    # Recommendation id -> its PlanDefinition.
    recommendations: Mapping[str, Resource]
    # Activity id -> its ActivityDefinition.
    activities: Mapping[str, Resource]
    # Recommendation id -> its grade as the CPG extensions of an action (shared: read only).
    grades: Mapping[str, list[Resource]]
    # Canonical URL -> the title of the PlanDefinition or ActivityDefinition, in each language.
    titles: Mapping[str, Localized]

    def of(self, resource_type: str) -> list[Resource]:
        return [r for r in self.resources if r["resourceType"] == resource_type]

    def by_url(self) -> dict[str, Resource]:
        return {r["url"]: r for r in self.resources if "url" in r}


def _translated(text: Localized) -> Resource:
    """The ``_element`` of a Danish string with its English translation (FHIR extension)."""
    return {
        "extension": [
            {
                "url": EXT_TRANSLATION,
                "extension": [
                    {"url": "lang", "valueCode": "en"},
                    {"url": "content", "valueString": text.en},
                ],
            }
        ]
    }


def _text(name: str, text: Localized) -> Resource:
    return {name: text.da, f"_{name}": _translated(text)}


def _computable_name(resource_id: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-.]", resource_id))


def _coding(system: str, code: str, display: str | None = None) -> Resource:
    coding = {"system": system, "code": code}
    if display is not None:
        coding["display"] = display
    return coding


def _concept(system: str, code: str, display: str | None = None) -> Resource:
    return {"coding": [_coding(system, code, display)]}


def _checked_id(resource_id: str) -> str:
    if not _FHIR_ID.match(resource_id):
        raise InputError(f"FHIR id '{resource_id}': more than 64 characters or not [A-Za-z0-9-.]")
    return resource_id


def grade_extensions(rec: Recommendation, canonicals: Canonicals) -> list[Resource]:
    """A recommendation's strength, quality of evidence and direction as the CPG extensions of
    an action: GRADE strength and certainty for a graded one; a good-practice statement gets
    the project's strength code and no quality of evidence."""
    if rec.kind is Kind.GOOD_PRACTICE:
        strength = _concept(
            canonicals.url("CodeSystem", GOOD_PRACTICE_CS),
            GOOD_PRACTICE_CODE,
            "Good practice statement",
        )
    else:
        assert rec.strength is not None
        strength = _concept(STRENGTH_SYSTEM, rec.strength.value, rec.strength.value.capitalize())
    extensions = [{"url": EXT_STRENGTH, "valueCodeableConcept": strength}]
    if rec.certainty is not None:
        code = rec.certainty.value
        quality = _concept(QUALITY_SYSTEM, code, _QUALITY_DISPLAY[code])
        extensions.append({"url": EXT_QUALITY, "valueCodeableConcept": quality})
    direction = rec.direction.value
    extensions.append(
        {
            "url": EXT_DIRECTION,
            "valueCodeableConcept": _concept(DIRECTION_SYSTEM, direction, direction.capitalize()),
        }
    )
    return extensions


class _Builder:
    def __init__(self, package: GuidelinePackage, canonicals: Canonicals) -> None:
        self.package = package
        self.g = package.content
        self.spec = package.cpg
        self.valuesets: ValueSets = package.valuesets
        self.canon = canonicals
        g = self.g
        status = "active" if g.status.in_force else "retired"
        self.common: Resource = {
            "version": g.version,
            "status": status,
            "experimental": False,
            "date": g.published.isoformat(),
            "publisher": g.publisher,
        }
        if g.copyright is not None:
            self.common["copyright"] = g.copyright
        if not g.status.in_force and g.status.since is not None:
            self.common["effectivePeriod"] = {"end": g.status.since.isoformat()}

    def _id(self, suffix: str | None = None) -> str:
        return _checked_id(self.g.id if suffix is None else f"{self.g.id}-{suffix}")

    def _head(self, resource_type: str, resource_id: str, profile: str) -> Resource:
        return {
            "resourceType": resource_type,
            "id": resource_id,
            "meta": {"profile": [profile]},
            "language": "da",
            "extension": [
                {"url": EXT_CAPABILITY, "valueCode": "computable"},
                {"url": EXT_LEVEL, "valueCode": "structured"},
            ],
            "url": self.canon.url(resource_type, resource_id),
            "name": _computable_name(resource_id),
        }

    def related(self) -> list[Resource]:
        """The citation of the guideline and the rating system its grades follow."""
        g, rating = self.g, self.spec.rating_system
        return [
            {
                "type": "citation",
                "label": g.short_title.da,
                "display": g.title.da,
                "citation": g.source.citation.da,
                "url": g.source.url,
            },
            {
                "type": "documentation",
                "label": "rating-system",
                "display": f"{rating.name}: {rating.text.da}",
                "url": rating.url,
            },
        ]

    # -- activities ---------------------------------------------------------------------------

    def activity_title(self, activity: Activity) -> Localized:
        if activity.title is not None:
            return activity.title
        assert activity.valueset is not None
        return self.valuesets.get(activity.valueset).title

    def activity(self, activity: Activity) -> Resource:
        title = self.activity_title(activity)
        links = [
            (rec_id, links.not_performed(self.g.by_id[rec_id].direction))
            for rec_id, links in self.spec.recommendations.items()
            if activity.id in links.activities
        ]
        res = self._head("ActivityDefinition", self._id(activity.id), PROFILE_ACTIVITY)
        res |= _text("title", title)
        res |= self.common
        res |= _text("description", title)
        res["kind"] = activity.kind
        res["intent"] = "proposal"
        if all(activity.id in not_done for _, not_done in links):
            res["doNotPerform"] = True
        code: Resource = {"text": title.da}
        if activity.valueset is not None:
            vs = self.valuesets.get(activity.valueset)
            code["coding"] = [
                _coding(c.system, c.code, c.display) if c.display else _coding(c.system, c.code)
                for c in vs.codes
            ]
            res["relatedArtifact"] = [
                {
                    "type": "depends-on",
                    "display": vs.title.da,
                    "resource": self.canon.url("ValueSet", vs.id),
                }
            ]
        res["code"] = code
        return res

    # -- plan definitions ---------------------------------------------------------------------

    def recommendation(self, rec: Recommendation, activities: Mapping[str, Resource]) -> Resource:
        g = self.g
        res = self._head("PlanDefinition", self._id(rec.id), PROFILE_RECOMMENDATION)
        res |= _text("title", rec.label)
        res["type"] = _concept(PLAN_DEFINITION_TYPE, "eca-rule", "ECA Rule")
        res |= self.common
        res |= _text("description", rec.wording)
        res["relatedArtifact"] = self.related()
        condition = {
            "kind": "applicability",
            "expression": {
                "language": "text/plain",
                **_text("expression", g.scope.text),
            },
        }
        action: Resource = {"extension": grade_extensions(rec, self.canon)}
        action |= _text("title", rec.label)
        action |= _text("description", rec.wording)
        action["code"] = [_concept(COMMON_PROCESS, self.spec.process(rec.section))]
        action["condition"] = [condition]
        links = self.spec.recommendations.get(rec.id)
        if links is not None:
            definitions = [activities[a] for a in links.activities]
            if len(definitions) == 1:
                action["definitionCanonical"] = definitions[0]["url"]
            else:
                action["selectionBehavior"] = links.selection
                action["action"] = [
                    {"title": d["title"], "definitionCanonical": d["url"]} for d in definitions
                ]
        res["action"] = [action]
        return res

    def strategy(self, section_id: str, recs: Mapping[str, Resource]) -> Resource:
        section = next(s for s in self.g.sections if s.id == section_id)
        res = self._head("PlanDefinition", self._id(f"{section.id}-strategy"), PROFILE_STRATEGY)
        res |= _text("title", section.heading)
        res["type"] = _concept(PLAN_DEFINITION_TYPE, "workflow-definition", "Workflow Definition")
        res |= self.common
        res |= _text("description", section.heading)
        res["relatedArtifact"] = self.related()
        code = [_concept(COMMON_PROCESS, self.spec.process(section.id))]
        res["action"] = [
            {
                **_text("title", rec.label),
                **_text("description", rec.wording),
                "code": code,
                "definitionCanonical": recs[rec.id]["url"],
            }
            for rec in self.g.in_section(section.id)
        ]
        return res

    def pathway(self, strategies: Mapping[str, Resource]) -> Resource:
        g = self.g
        res = self._head("PlanDefinition", self._id(), PROFILE_PATHWAY)
        res |= _text("title", g.title)
        res["type"] = _concept(PLAN_DEFINITION_TYPE, "clinical-protocol", "Clinical Protocol")
        res |= self.common
        about = Localized(
            da="\n\n".join([g.scope.text.da, *(p.da for p in g.about)]),
            en="\n\n".join([g.scope.text.en, *(p.en for p in g.about)]),
        )
        res |= _text("description", about)
        res["relatedArtifact"] = self.related()
        actions = []
        for section in g.sections:
            labels = g.in_section(section.id)
            summary = Localized(
                da="; ".join(r.label.da for r in labels), en="; ".join(r.label.en for r in labels)
            )
            actions.append(
                {
                    **_text("title", section.heading),
                    **_text("description", summary),
                    "code": [_concept(COMMON_PROCESS, self.spec.process(section.id))],
                    "definitionCanonical": strategies[section.id]["url"],
                }
            )
        res["action"] = actions
        return res

    # -- terminology --------------------------------------------------------------------------

    def valueset(self, vs_id: str) -> Resource:
        resource = self.valuesets.to_fhir(vs_id)
        return resource | {"url": self.canon.url("ValueSet", vs_id)}

    def codesystem(
        self,
        cs_id: str,
        url: str,
        title: str,
        description: str,
        concepts: list[tuple[str, str]],
        *,
        fragment: bool = False,
    ) -> Resource:
        return {
            "resourceType": "CodeSystem",
            "id": _checked_id(cs_id),
            "url": url,
            "version": self.g.version,
            "name": _computable_name(cs_id),
            "title": title,
            "status": "active",
            "experimental": False,
            "publisher": "nkr",
            "description": description,
            "caseSensitive": True,
            "content": "fragment" if fragment else "complete",
            "count": len(concepts),
            "concept": [{"code": code, "display": display} for code, display in concepts],
        }

    def codesystems(self) -> list[Resource]:
        package, texts = self.package, self.package.texts
        by_topic = texts.lists("override-reasons-by-topic")
        topics = [(t, package.topic_label(t, "da") or t) for t in by_topic]
        reasons = list(dict.fromkeys(code for codes in by_topic.values() for code in codes))
        local = {
            c.code: c.display or c.code
            for vs in self.valuesets.by_id.values()
            for c in vs.codes
            if c.system == LOCAL_ORDERS_SYSTEM
        }
        systems = [
            self.codesystem(
                GOOD_PRACTICE_CS,
                self.canon.url("CodeSystem", GOOD_PRACTICE_CS),
                "nkr: strength of recommendation beyond GRADE",
                "A good-practice statement (√): recommended practice where there is no evidence "
                "to grade. GRADE's strong/weak does not apply, and it has no quality of evidence.",
                [(GOOD_PRACTICE_CODE, "Good practice statement")],
            ),
            self.codesystem(
                STATUS_CS,
                self.canon.url("CodeSystem", STATUS_CS),
                "nkr: what a recommendation means for a patient now",
                "The status of a recommendation in an assessment, as $apply gives it on each "
                "action of its RequestGroup.",
                [(s.value, _STATUS_DISPLAY[s]) for s in RecStatus],
            ),
            self.codesystem(
                self._id("card-topics"),
                TOPIC_SYSTEM,
                "nkr: CDS Hooks card topics",
                f"The card topics of {self.g.id} (other guidelines add theirs to the system).",
                topics,
                fragment=True,
            ),
            self.codesystem(
                self._id("override-reasons"),
                OVERRIDE_REASON_SYSTEM,
                "nkr: CDS Hooks override reasons",
                f"The override reasons the cards of {self.g.id} offer.",
                [(code, texts(f"override-reasons.{code}", "da")) for code in reasons],
                fragment=True,
            ),
        ]
        if local:
            systems.append(
                self.codesystem(
                    self._id("local-orders"),
                    LOCAL_ORDERS_SYSTEM,
                    "nkr: local placeholder codes",
                    "Placeholders for a deployment's own order codes, which replace them.",
                    sorted(local.items()),
                    fragment=True,
                )
            )
        return systems

    def build(self) -> Artifacts:
        g, spec = self.g, self.spec
        activities = {a.id: self.activity(a) for a in spec.activities}
        recs = {r.id: self.recommendation(r, activities) for r in g.recommendations}
        strategies = {s.id: self.strategy(s.id, recs) for s in g.sections}
        pathway = self.pathway(strategies)
        covers = {pathway["id"]: tuple(r.id for r in g.recommendations)}
        covers |= {
            strategies[s.id]["id"]: tuple(r.id for r in g.in_section(s.id)) for s in g.sections
        }
        covers |= {recs[r.id]["id"]: (r.id,) for r in g.recommendations}
        resources = (
            pathway,
            *strategies.values(),
            *recs.values(),
            *activities.values(),
            *(self.valueset(vs_id) for vs_id in self.valuesets.ids),
            *self.codesystems(),
        )
        grades = {r.id: grade_extensions(r, self.canon) for r in g.recommendations}
        titles = {pathway["url"]: g.title}
        titles |= {strategies[s.id]["url"]: s.heading for s in g.sections}
        titles |= {recs[r.id]["url"]: r.label for r in g.recommendations}
        titles |= {activities[a.id]["url"]: self.activity_title(a) for a in spec.activities}
        return Artifacts(g, self.canon, resources, covers, recs, activities, grades, titles)


def build_artifacts(package: GuidelinePackage, base: str | None = None) -> Artifacts:
    """The guideline's artifacts, canonical URLs under ``base`` (None: ``urn:nkr:`` URNs)."""
    # A package is immutable once built and hashed by identity: built once per package.
    return _cached(cast("Hashable", package), base)


@cache
def _cached(package: Hashable, base: str | None) -> Artifacts:
    return _Builder(cast("GuidelinePackage", package), Canonicals(base)).build()


def bundle(artifacts: Artifacts) -> Resource:
    """Every artifact in one FHIR R4 Bundle of type ``collection``."""
    return {
        "resourceType": "Bundle",
        "id": _checked_id(artifacts.guideline.id),
        "type": "collection",
        "entry": [{"resource": r} for r in artifacts.resources],
    }


def package_name(g: Guideline) -> str:
    """The FHIR NPM package name: ``nkr.<slug>``."""
    return f"nkr.{g.slug}"


def package_version(g: Guideline) -> str:
    """The guideline's version as the three-part version an NPM package has (1.1 -> 1.1.0)."""
    parts = g.version.split(".")
    return ".".join([*parts, *["0"] * (3 - len(parts))]) if len(parts) < 3 else g.version


def package_manifest(artifacts: Artifacts) -> Resource:
    g = artifacts.guideline
    manifest: Resource = {
        "name": package_name(g),
        "version": package_version(g),
        "title": g.title.en,
        "description": (
            f"{g.title.en} ({g.publisher}, version {g.version}) as HL7 CPG computable "
            "artifacts, generated by nkr from the guideline's data."
        ),
        "author": "nkr",
        "fhirVersions": ["4.0.1"],
        "dependencies": {"hl7.fhir.r4.core": "4.0.1", "hl7.fhir.uv.cpg": "2.0.0"},
        "url": g.source.url,
    }
    if artifacts.canonicals.base is not None:
        manifest["canonical"] = artifacts.canonicals.base
    return manifest


def _file_name(resource: Resource) -> str:
    return f"{resource['resourceType']}-{resource['id']}.json"


def _json(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False, indent=2).encode("utf-8") + b"\n"


def package_bytes(artifacts: Artifacts) -> bytes:
    """The FHIR NPM package as a gzipped tar: ``package/package.json``, ``package/.index.json``
    and one JSON file per resource."""
    files: dict[str, bytes] = {"package/package.json": _json(package_manifest(artifacts))}
    index = []
    for r in artifacts.resources:
        name = _file_name(r)
        files[f"package/{name}"] = _json(r)
        entry = {"filename": name, "resourceType": r["resourceType"], "id": r["id"]}
        entry |= {k: r[k] for k in ("url", "version") if k in r}
        index.append(entry)
    files["package/.index.json"] = _json({"index-version": 1, "files": index})
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz", format=tarfile.PAX_FORMAT) as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o644
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def write_package(artifacts: Artifacts, folder: Path) -> Path:
    """The FHIR NPM package in ``folder`` as ``<name>-<version>.tgz``; returns its path."""
    if not folder.is_dir():
        raise InputError(f"--package: {folder} is not a folder")
    g = artifacts.guideline
    path = folder / f"{package_name(g)}-{package_version(g)}.tgz"
    write_atomically(path, package_bytes(artifacts))
    return path


def export_fhir(
    package: GuidelinePackage, base: str | None, out: Path | None, package_dir: Path | None
) -> Path | None:
    """``nkr export fhir``: the Bundle to ``out`` (None: standard output), or the NPM package
    into ``package_dir``; returns the file written (None: standard output)."""
    artifacts = build_artifacts(package, base)
    if package_dir is not None:
        if out is not None:
            raise InputError("--out and --package: give one of them")
        return write_package(artifacts, package_dir)
    data = _json(bundle(artifacts))
    if out is None:
        sys.stdout.buffer.write(data)
        return None
    if not out.parent.is_dir():
        raise InputError(f"--out: {out.parent} is not a folder")
    write_atomically(out, data)
    return out
