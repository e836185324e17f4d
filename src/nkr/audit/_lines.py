"""What a line of an export is, as both engines classify it: a patient's resource, a
problem (with its words), or shared data (an Organization, whose name the report shows)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

import orjson

if TYPE_CHECKING:
    from nkr.audit._result import Tally

# A line's kind, as the scan sorts them: a patient's resource first, then the problems.
OK, MALFORMED, UNKNOWN_TYPE, NO_PATIENT, SHARED = 0, 1, 2, 3, 4
DETAIL: Final = {
    MALFORMED: ("malformed", "not a JSON object with a resourceType"),
    UNKNOWN_TYPE: ("unknown-type", "resourceType: not a FHIR R4 resource type"),
    NO_PATIENT: ("no-patient", "no subject.reference or patient.reference to a Patient"),
}


def organization_name(text: str, tally: Tally) -> None:
    """An Organization's name, kept for the report (shared data: no patient's)."""
    try:
        org = orjson.loads(text)
    except orjson.JSONDecodeError:
        return
    if (
        isinstance(org, dict)
        and isinstance(org.get("id"), str)
        and isinstance(org.get("name"), str)
    ):
        tally.organizations[f"Organization/{org['id']}"] = org["name"]
