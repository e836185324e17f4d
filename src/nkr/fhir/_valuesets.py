"""Value sets (the terminology seam): the codes that tie FHIR data to a guideline's case,
loaded and validated once.

A guideline ships its files in a folder and names the ids it expects; a deployment adds its
local codes with a folder of extra files in the same format (``NKR_VALUESET_DIR``). Membership
is an exact match on ``(system, code)``: codes are not normalised and hierarchies are not
followed, so a deployment lists every code it uses.

The file format (one value set per file; extra files may omit ``title`` and ``description``
when they add to a shipped id)::

    {
      "id": "some-intervention",
      "title": {"da": "...", "en": "..."},
      "description": {"da": "...", "en": "..."},
      "codes": [
        {"system": "urn:oid:...", "code": "...", "display": "...",
         "provenance": "local: the region's order catalogue, 2026"}
      ]
    }

``provenance`` starts with its kind: ``verified``, ``derived``, ``unconfirmed``,
``nkr local placeholder`` or ``local``. A guideline may declare per-code attributes
(:class:`CodeAttribute`): a further string field that the codes of one value set carry, and
only those, with the values it allows (what each code stands for in the guideline's case).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Final

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from nkr._errors import InputError, describe_validation_error
from nkr._guideline import Localized
from nkr.fhir._read import CodeableConcept

# Obviously local identifiers (URNs in an "nkr" namespace): nothing here pretends to be a real
# terminology server or a published canonical URL.
LOCAL_ORDERS_SYSTEM: Final = "urn:nkr:local-orders"
VALUESET_URL_PREFIX: Final = "urn:nkr:valueset:"
PROVENANCE_EXTENSION_URL: Final = "urn:nkr:extension:code-provenance"

PROVENANCE_KINDS: Final = ("verified", "derived", "unconfirmed", "nkr local placeholder", "local")
_PROVENANCE_PATTERN = r"^(verified|derived|unconfirmed|nkr local placeholder|local): \S.*$"

Provenance = Annotated[str, StringConstraints(pattern=_PROVENANCE_PATTERN)]
SystemUri = Annotated[str, StringConstraints(pattern=r"^[A-Za-z][A-Za-z0-9+.\-]*:\S+$")]
# FHIR's `code` type: no leading, trailing or doubled whitespace.
FhirCode = Annotated[str, StringConstraints(pattern=r"^\S+( \S+)*$")]
_NO_IDS: Final[frozenset[str]] = frozenset()
ValueSetId = Annotated[str, StringConstraints(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=64)]


@dataclass(frozen=True, slots=True)
class CodeAttribute:
    """A per-code attribute a guideline declares: every code of value set ``valueset`` (and
    no other) carries field ``name``, one of ``values``."""

    name: str
    valueset: str
    values: tuple[str, ...]


class ValueSetCode(BaseModel):
    """One code of a value set, with where it came from (and the guideline's attributes)."""

    model_config = ConfigDict(frozen=True, extra="allow")
    __pydantic_extra__: dict[str, Any] = Field(init=False)

    system: SystemUri
    code: FhirCode
    display: str | None = Field(default=None, min_length=1)
    provenance: Provenance

    @property
    def provenance_kind(self) -> str:
        return self.provenance.partition(": ")[0]

    def attribute(self, name: str) -> str | None:
        """A per-code attribute (:class:`CodeAttribute`) of this code, None when it has none."""
        value = (self.__pydantic_extra__ or {}).get(name)
        return value if isinstance(value, str) else None


class ValueSetFile(BaseModel):
    """The format of a value-set file, shipped or extra."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: ValueSetId
    # Required for a new id; an extra file that adds codes to a shipped value set may omit it.
    title: Localized | None = None
    description: Localized | None = None
    codes: tuple[ValueSetCode, ...] = Field(min_length=1)


@dataclass(frozen=True, slots=True)
class ValueSet:
    """A value set after merging the shipped file with a deployment's extra files."""

    id: str
    title: Localized
    description: Localized | None
    codes: tuple[ValueSetCode, ...]
    files: tuple[str, ...]

    @property
    def url(self) -> str:
        return VALUESET_URL_PREFIX + self.id


@dataclass(frozen=True, slots=True)
class ValueSets:
    """All value sets, with an index for O(1) membership tests.

    Build it with :func:`load_valuesets` (a guideline does, from its own folder and ids).
    """

    by_id: Mapping[str, ValueSet]
    loaded_at: dt.datetime
    version: str
    _index: dict[tuple[str, str], frozenset[str]] = field(repr=False)
    _attributes: dict[str, dict[tuple[str, str], str]] = field(repr=False)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(self.by_id)

    def get(self, vs_id: str) -> ValueSet:
        """The value set ``vs_id``; ``KeyError`` when there is none."""
        return self.by_id[vs_id]

    @property
    def index(self) -> Mapping[tuple[str, str], frozenset[str]]:
        """``(system, code)`` to the ids of every value set holding it: for loops over many
        codings, where a lookup per coding must cost no more than a dict access."""
        return self._index

    def ids_of(self, system: str, code: str) -> frozenset[str]:
        """The ids of every value set holding ``(system, code)``."""
        return self._index.get((system, code), frozenset())

    def ids_in(self, concept: CodeableConcept | None) -> frozenset[str]:
        """The ids of every value set holding a coding of a typed CodeableConcept (codings
        without a system or a code are in none)."""
        matched: frozenset[str] = _NO_IDS
        if concept is None or not concept.coding:
            return matched
        index = self._index
        for coding in concept.coding:
            ids = index.get((coding.system, coding.code))  # type: ignore[arg-type]
            if ids:
                matched = matched | ids if matched else ids
        return matched

    def matching(self, concept: Mapping[str, Any]) -> frozenset[str]:
        """The ids of every value set holding a coding of ``concept`` (a Coding or a
        CodeableConcept, as JSON). Codings without a string system and code never match."""
        found: frozenset[str] = frozenset()
        for system, code in _pairs(concept):
            hit = self._index.get((system, code))
            if hit:
                found = found | hit
        return found

    def contains(self, vs_id: str, concept: Mapping[str, Any]) -> bool:
        """Whether a Coding or CodeableConcept (as JSON) has a coding in value set ``vs_id``."""
        return any(vs_id in self.ids_of(s, c) for s, c in _pairs(concept))

    def attribute(self, name: str, system: str, code: str) -> str | None:
        """A per-code attribute (:class:`CodeAttribute`) of ``(system, code)``."""
        return self._attributes.get(name, {}).get((system, code))

    def to_fhir(self, vs_id: str) -> dict[str, Any]:
        """Value set ``vs_id`` as a FHIR R4 ValueSet with compose and expansion. Each code's
        provenance is an extension on its concept and on its expansion entry."""
        vs = self.by_id[vs_id]
        include: dict[str, list[dict[str, Any]]] = {}
        contains: list[dict[str, Any]] = []
        for c in vs.codes:
            ext = [{"url": PROVENANCE_EXTENSION_URL, "valueString": c.provenance}]
            concept: dict[str, Any] = {"extension": ext, "code": c.code}
            entry: dict[str, Any] = {"extension": ext, "system": c.system, "code": c.code}
            if c.display is not None:
                concept["display"] = c.display
                entry["display"] = c.display
            include.setdefault(c.system, []).append(concept)
            contains.append(entry)
        text = vs.description or vs.title
        description = f"{text.da}\n\n{text.en}" + (
            "\n\nEvery code carries its provenance (extension "
            f"{PROVENANCE_EXTENSION_URL}): verified, derived, unconfirmed, or a local code."
        )
        return {
            "resourceType": "ValueSet",
            "id": vs.id,
            "url": vs.url,
            "version": self.version,
            "name": _computable_name(vs.id),
            "title": vs.title.da,
            "status": "active",
            "experimental": False,
            "publisher": "nkr",
            "description": description,
            "jurisdiction": [{"coding": [{"system": "urn:iso:std:iso:3166", "code": "DK"}]}],
            "compose": {
                "include": [
                    {"system": system, "concept": concepts} for system, concepts in include.items()
                ]
            },
            "expansion": {
                "timestamp": self.loaded_at.isoformat(timespec="seconds"),
                "total": len(contains),
                "contains": contains,
            },
        }


def _pairs(concept: Mapping[str, Any]) -> Iterable[tuple[str, str]]:
    codings = concept.get("coding") if "coding" in concept else [concept]
    if not isinstance(codings, list):
        return
    for coding in codings:
        if isinstance(coding, dict):
            system, code = coding.get("system"), coding.get("code")
            if isinstance(system, str) and isinstance(code, str):
                yield system, code


def _computable_name(vs_id: str) -> str:
    return "".join(part.capitalize() for part in vs_id.split("-"))


def _read(path: Path, shown: str) -> ValueSetFile:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise InputError(f"{shown}: cannot read the value-set file ({exc.strerror})") from None
    try:
        return ValueSetFile.model_validate_json(raw)
    except ValidationError as exc:
        first = exc.errors(include_url=False)[0]
        if first["type"] == "json_invalid":
            raise InputError(f"{shown}: not valid JSON ({first['msg']})") from None
        raise InputError(f"{shown}: {describe_validation_error(exc)}") from None


def _check_codes(doc: ValueSetFile, shown: str, attributes: Sequence[CodeAttribute]) -> None:
    seen: set[tuple[str, str]] = set()
    known = {a.name: a for a in attributes}
    for i, c in enumerate(doc.codes):  # as pydantic's extra="forbid" would, before the rest
        for name in c.__pydantic_extra__ or {}:
            if name not in known:
                raise InputError(f"{shown}: codes[{i}].{name}: unknown field")
    for i, c in enumerate(doc.codes):
        key = (c.system, c.code)
        if key in seen:
            raise InputError(f"{shown}: codes[{i}]: {c.system}|{c.code} is listed twice")
        seen.add(key)
        for a in attributes:
            value = (c.__pydantic_extra__ or {}).get(a.name)
            if doc.id == a.valueset and value is None:
                where = f"{shown}: codes[{i}].{a.name}"
                raise InputError(f"{where}: required in the {a.valueset} value set")
            if doc.id != a.valueset and value is not None:
                where = f"{shown}: codes[{i}].{a.name}"
                raise InputError(f"{where}: allowed only in the {a.valueset} set")
            if value is not None and value not in a.values:
                allowed = ", ".join(repr(v) for v in a.values[:-1]) + f" or {a.values[-1]!r}"
                raise InputError(f"{shown}: codes[{i}].{a.name}: Input should be {allowed}")


def _package_version() -> str:
    try:
        return importlib.metadata.version("nkr")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - running from a checkout
        return "0"


def load_valuesets(
    shipped_dir: Path,
    expected_ids: Sequence[str],
    extra_dir: Path | None = None,
    *,
    attributes: Sequence[CodeAttribute] = (),
    now: dt.datetime | None = None,
) -> ValueSets:
    """Load a guideline's value sets (``shipped_dir``, exactly ``expected_ids``) and merge the
    ``*.json`` files of ``extra_dir``.

    An extra file adds codes to a shipped id or defines a new id (then ``title`` is required).
    A code already present is kept once (the first file wins) unless the two disagree on an
    attribute. Raises :class:`~nkr.InputError` naming the file and field on any problem.
    """
    merged: dict[str, tuple[ValueSetFile, list[ValueSetCode], list[str]]] = {}
    shipped = sorted(shipped_dir.glob("*.json"))
    for path in shipped:
        shown = f"{shipped_dir.name}/{path.name}"
        doc = _read(path, shown)
        if path.stem != doc.id:
            raise InputError(f"{shown}: id: {doc.id!r} differs from the file name")
        if doc.title is None:
            raise InputError(f"{shown}: title: required field is missing")
        _check_codes(doc, shown, attributes)
        merged[doc.id] = (doc, list(doc.codes), [shown])
    if set(merged) != set(expected_ids):
        raise InputError(
            f"{shipped_dir}: value sets differ from the expected ids: missing "
            f"{sorted(set(expected_ids) - set(merged))}, unexpected "
            f"{sorted(set(merged) - set(expected_ids))}"
        )
    if extra_dir is not None:
        if not extra_dir.is_dir():
            raise InputError(f"NKR_VALUESET_DIR: {extra_dir} is not a folder")
        for path in sorted(extra_dir.glob("*.json")):
            shown = str(path)
            doc = _read(path, shown)
            _check_codes(doc, shown, attributes)
            if doc.id not in merged:
                if doc.title is None:
                    raise InputError(f"{shown}: title: required for the new value set {doc.id!r}")
                merged[doc.id] = (doc, list(doc.codes), [shown])
                continue
            _, codes, files = merged[doc.id]
            present = {(c.system, c.code): c for c in codes}
            for i, c in enumerate(doc.codes):
                old = present.get((c.system, c.code))
                if old is None:
                    codes.append(c)
                    continue
                for a in attributes:
                    if old.attribute(a.name) != c.attribute(a.name):
                        raise InputError(
                            f"{shown}: codes[{i}].{a.name}: {c.system}|{c.code} is already "
                            f"mapped to {old.attribute(a.name)!r} by {files[0]}"
                        )
            files.append(shown)
    by_id: dict[str, ValueSet] = {}
    index: dict[tuple[str, str], set[str]] = {}
    by_attribute: dict[str, dict[tuple[str, str], str]] = {a.name: {} for a in attributes}
    for vs_id, (doc, codes, files) in merged.items():
        assert doc.title is not None
        by_id[vs_id] = ValueSet(vs_id, doc.title, doc.description, tuple(codes), tuple(files))
        for c in codes:
            index.setdefault((c.system, c.code), set()).add(vs_id)
            for name, value in (c.__pydantic_extra__ or {}).items():
                by_attribute[name][(c.system, c.code)] = value
    ordered = {i: by_id[i] for i in expected_ids} | {
        i: by_id[i] for i in sorted(by_id) if i not in expected_ids
    }
    return ValueSets(
        by_id=ordered,
        loaded_at=now or dt.datetime.now(dt.UTC),
        version=_package_version(),
        _index={k: frozenset(v) for k, v in index.items()},
        _attributes=by_attribute,
    )
