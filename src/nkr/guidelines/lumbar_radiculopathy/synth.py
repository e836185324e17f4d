"""Synthetic patients for this guideline (``nkr synth``): the clinical plan of the export, and
what the audit must find for each patient, decided from the plan itself (never by reading the
files back with nkr's reader or rules; ``tests/synth`` checks that the two agree).

The mix (each share is a draw per patient, so counts vary a little with the seed):

- 8 organisations (fictional names, marked as test data) of different sizes, each with its own
  adherence: how often it does an MRI, a glucocorticoid injection, acupuncture, advises bed
  rest, offers exercise or mobilisation, and refers severe pain despite treatment to a spine
  surgeon. 2 % of patients have no managing organisation (stratum ``unknown``).
- 65 % of patients have an episode: a qualifying diagnosis (value set
  ``lumbar-radiculopathy``) whose onset S falls in 2024-2025, dated by ``onsetDateTime`` (a
  date-time, a date or a month), ``onsetPeriod.start`` or, without an onset, by
  ``recordedDate``; 25 % are re-coded by a second qualifying diagnosis with a later onset, 4 %
  also have a refuted or entered-in-error one with an earlier onset (which must not move S),
  3 % an old resolved one. Their visits (Encounters), 0-4 pain scores (LOINC ``72514-3``,
  some after A, before S, not final, or undated), and the care the organisation gives within
  W = [S, S + 84 days] as Procedures and ServiceRequests with statuses that count, plus
  decoys that must not count: statuses that do not (``not-done``, ``entered-in-error``,
  ``revoked`` ...), dates outside W and undated resources.
- Out of scope: 7 % under 18 on A (and 2 % born 18 years before A or A + 1 day), birth dates
  given as a year (8 %) or a month (5 %) only (the lowest possible age counts), 3 % without a
  birth date and 0.5 % without a Patient resource; 6 % with a red flag (value set
  ``red-flags``) known on A, and decoy red flags dated after A, refuted, or undated (an
  undated one is kept, so it excludes).
- 35 % have no episode: unrelated diagnoses only, or a qualifying code that does not count
  (refuted, entered-in-error, resolved) or has no date, or a red flag alone.
- Everyone gets noise: visits, unrelated diagnoses (WHO ICD-10 J06.9, I10, E11.9, J45.9,
  K21.9, N39.0, with their WHO 2019 titles) and vital signs (LOINC 8480-6 systolic blood
  pressure, 29463-7 body weight, 8867-4 heart rate).

Codes of the guideline come only from its value sets (``valuesets/*.json``); the noise codes
above are the only others. Lines are built from prebuilt JSON fragments (fast and
deterministic).
"""

from __future__ import annotations

import bisect
import calendar
import datetime as dt
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Final, NamedTuple

import orjson

from nkr._synth import Sink

VALUESET_DIR: Final = Path(__file__).with_name("valuesets")

RADICULOPATHY: Final = "lumbar-radiculopathy"
RED_FLAGS: Final = "red-flags"
PAIN_INTENSITY: Final = "pain-intensity"
MRI: Final = "mri-lumbar-spine"
INJECTION: Final = "glucocorticoid-injection"
ACUPUNCTURE: Final = "acupuncture"
BED_REST: Final = "bed-rest"
SUPERVISED: Final = "supervised-exercise"
SPECIFIC: Final = "specific-exercise"
MOBILISATION: Final = "manual-mobilisation"
SPINE_SURGEON: Final = "spine-surgeon-referral"

# The audit's indicators (AUDIT_SPEC.md): those "done in W", by their value sets.
IN_WINDOW: Final[Mapping[str, frozenset[str]]] = {
    "mri": frozenset({MRI}),
    "glucocorticoid-injection": frozenset({INJECTION}),
    "acupuncture": frozenset({ACUPUNCTURE}),
    "bed-rest": frozenset({BED_REST}),
    "exercise-or-mobilisation": frozenset({SUPERVISED, SPECIFIC, MOBILISATION}),
}
SURGEON_BY_DAY_84: Final = "spine-surgeon-by-day-84"
INDICATORS: Final = (*IN_WINDOW, SURGEON_BY_DAY_84)
EXCLUSIONS: Final = ("no-birth-date", "under-18", "red-flag")

PROCEDURE: Final = "Procedure"
REQUEST: Final = "ServiceRequest"
# What counts, written here from the audit's definitions and the guideline's reading of FHIR
# (its module notes), not taken from the reading's code: done in W; treatment tried (the
# case's non_surgical_treatment); referred to or assessed by a spine surgeon.
DONE: Final = {
    PROCEDURE: frozenset({"completed", "in-progress"}),
    REQUEST: frozenset({"active", "completed"}),
}
TRIED: Final = {
    PROCEDURE: frozenset({"completed", "in-progress"}),
    REQUEST: frozenset({"completed"}),
}
TREATMENTS: Final = frozenset({SUPERVISED, SPECIFIC, MOBILISATION, ACUPUNCTURE, INJECTION})
NOT_DONE: Final = {
    PROCEDURE: ("not-done", "entered-in-error", "stopped", "preparation"),
    REQUEST: ("revoked", "entered-in-error", "on-hold", "draft"),
}
PAIN_COUNTS: Final = frozenset({"final", "amended", "corrected"})

# The period of episode starts, and the last day any resource is dated (S + 84 + at most 150).
PERIOD_START: Final = dt.date(2024, 1, 1)
PERIOD_END: Final = dt.date(2025, 12, 31)
_TAIL_DAYS: Final = 150

CLINICAL: Final = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VERIFICATION: Final = "http://terminology.hl7.org/CodeSystem/condition-ver-status"
# HL7 v3 ActReason HTEST ("test health data"): every Patient and Organization says it is made up.
TEST_DATA: Final = (
    '"meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActReason",'
    '"code":"HTEST","display":"test health data"}]}'
)
ICD10: Final = "http://hl7.org/fhir/sid/icd-10"
LOINC: Final = "http://loinc.org"
UCUM: Final = "http://unitsofmeasure.org"
NOISE_DIAGNOSES: Final = (
    ("J06.9", "Acute upper respiratory infection, unspecified"),
    ("I10", "Essential (primary) hypertension"),
    ("E11.9", "Type 2 diabetes mellitus without complications"),
    ("J45.9", "Asthma, unspecified"),
    ("K21.9", "Gastro-oesophageal reflux disease without oesophagitis"),
    ("N39.0", "Urinary tract infection, site not specified"),
)
# (code, display, unit, lowest, highest)
NOISE_VITALS: Final = (
    ("8480-6", "Systolic blood pressure", "mm[Hg]", 100, 170),
    ("29463-7", "Body weight", "kg", 45, 130),
    ("8867-4", "Heart rate", "/min", 50, 110),
)


@dataclass(frozen=True, slots=True)
class Organization:
    """A fictional organisation, its share of the patients and its adherence: the chance that
    an episode gets each kind of care within W (and a referral when it is due)."""

    id: str
    name: str
    weight: float
    mri: float
    injection: float
    acupuncture: float
    bed_rest: float
    exercise: float
    surgeon: float


ORGANIZATIONS: Final = (
    Organization("org-1", "Rygklinikken Nord (syntetisk)", 3, 0.08, 0.03, 0.02, 0.02, 0.85, 0.90),
    Organization("org-2", "Lægehuset Åparken (syntetisk)", 2, 0.15, 0.05, 0.05, 0.05, 0.75, 0.80),
    Organization("org-3", "Lægerne i Bymidten (syntetisk)", 2, 0.20, 0.08, 0.10, 0.08, 0.65, 0.70),
    Organization(
        "org-4", "Sundhedshuset Vest (syntetisk)", 1.5, 0.25, 0.10, 0.04, 0.10, 0.60, 0.60
    ),
    Organization("org-5", "Lægepraksis Havnen (syntetisk)", 1, 0.30, 0.15, 0.15, 0.15, 0.55, 0.50),
    Organization("org-6", "Lægehuset Skoven (syntetisk)", 1, 0.35, 0.20, 0.08, 0.20, 0.50, 0.45),
    Organization("org-7", "Lægehuset Engen (syntetisk)", 0.5, 0.40, 0.25, 0.20, 0.25, 0.40, 0.35),
    Organization("org-8", "Lægehuset Bakken (syntetisk)", 0.25, 0.45, 0.25, 0.25, 0.30, 0.35, 0.30),
)
_NO_ORGANIZATION: Final = 0.02


def load_codes(folder: Path = VALUESET_DIR) -> dict[str, tuple[str, ...]]:
    """Each value set's codes as CodeableConcept JSON, from the package's files (as shipped)."""
    found: dict[str, tuple[str, ...]] = {}
    for path in sorted(folder.glob("*.json")):
        data = orjson.loads(path.read_bytes())
        found[data["id"]] = tuple(
            _concept(c["system"], c["code"], c.get("display")) for c in data["codes"]
        )
    return found


def _concept(system: str, code: str, display: str | None) -> str:
    coding: dict[str, str] = {"system": system, "code": code}
    if display is not None:
        coding["display"] = display
    return orjson.dumps({"coding": [coding]}).decode()


def _status(system: str, code: str) -> str:
    return _concept(system, code, None)


class _Care(NamedTuple):
    kind: str
    valueset: str
    status: str
    day: int | None  # the date's ordinal; None: undated


class _Score(NamedTuple):
    day: int | None
    score: int
    counts: bool


def _years(born: dt.date, on: dt.date) -> int:
    return on.year - born.year - ((on.month, on.day) < (born.month, born.day))


def _pick(rng: random.Random, items: Sequence[str]) -> str:
    return items[int(rng.random() * len(items))]


class LumbarSynthesis:
    """The plan (:class:`nkr._synth.Synthesis`) for lumbar radiculopathy: see the module."""

    def __init__(self, max_symptom_days: int, min_age_years: int, pain_threshold: int) -> None:
        self.window = max_symptom_days
        self.min_age = min_age_years
        self.threshold = pain_threshold
        self.codes = load_codes()
        self._start = PERIOD_START.toordinal()
        self._span = PERIOD_END.toordinal() - self._start + 1
        self._last = PERIOD_END.toordinal() + max_symptom_days + _TAIL_DAYS
        self._weights = list(_cumulative([o.weight for o in ORGANIZATIONS]))
        self._noise = tuple(_concept(ICD10, c, d) for c, d in NOISE_DIAGNOSES)
        self._vitals = tuple(
            (_concept(LOINC, c, d), f'"unit":"{u}","system":"{UCUM}","code":"{u}"', lo, hi)
            for c, d, u, lo, hi in NOISE_VITALS
        )
        self._clinical = {
            c: _status(CLINICAL, c)
            for c in ("active", "recurrence", "relapse", "resolved", "inactive")
        }
        self._verification = {
            c: _status(VERIFICATION, c)
            for c in ("confirmed", "provisional", "differential", "refuted", "entered-in-error")
        }

    indicators = INDICATORS
    exclusions = EXCLUSIONS

    @property
    def transaction_time(self) -> str:
        return f"{dt.date.fromordinal(self._last + 1).isoformat()}T00:00:00Z"

    @cached_property
    def _days(self) -> tuple[int, list[str], list[tuple[str, ...]]]:
        """By ordinal, from well before the period to after it: the ISO date, and its local
        date-times at the visiting hours (Danish time, roughly: summer time April-October)."""
        first = PERIOD_START.toordinal() - 800
        dates: list[str] = []
        stamps: list[tuple[str, ...]] = []
        for o in range(first, self._last + 2):
            d = dt.date.fromordinal(o)
            zone = "+02:00" if 4 <= d.month <= 10 else "+01:00"
            dates.append(d.isoformat())
            stamps.append(tuple(f"{d.isoformat()}T{t}{zone}" for t in _TIMES))
        return first, dates, stamps

    def shared(self, sink: Sink) -> None:
        lines = sink.lines("Organization")
        for o in ORGANIZATIONS:
            name = orjson.dumps(o.name).decode()
            lines.append(
                f'{{"resourceType":"Organization","id":"{o.id}",{TEST_DATA},'
                f'"active":true,"name":{name}}}'
            )

    def patients(self, rng: random.Random, first: int, count: int, sink: Sink) -> None:
        writer = _Writer(self, rng, sink)
        for index in range(first, first + count):
            writer.patient(index)


def _cumulative(weights: Sequence[float]) -> Sequence[float]:
    total = sum(weights)
    running = 0.0
    out = []
    for w in weights:
        running += w / total
        out.append(running)
    out[-1] = 1.0
    return out


_TIMES: Final = ("08:10:00", "09:30:00", "10:45:00", "11:20:00", "13:05:00", "14:40:00", "15:55:00")
_HOURS: Final = len(_TIMES)


class _Writer:
    """One block of patients: draws, writes and expects (state of the block only)."""

    def __init__(self, plan: LumbarSynthesis, rng: random.Random, sink: Sink) -> None:
        self.plan = plan
        self.rng = rng
        self.rand = rng.random
        self.sink = sink
        self.first_day, self.dates, self.stamps = plan._days
        self.out = {
            t: sink.lines(t)
            for t in ("Patient", "Encounter", "Condition", "Observation", PROCEDURE, REQUEST)
        }

    # -- dates ------------------------------------------------------------------------------

    def date(self, day: int) -> str:
        return self.dates[day - self.first_day]

    def datetime(self, day: int) -> str:
        return self.stamps[day - self.first_day][int(self.rand() * _HOURS)]

    # -- one patient ------------------------------------------------------------------------

    def patient(self, index: int) -> None:
        plan, rand = self.plan, self.rand
        pid = f"p{index:08d}"
        subject = f'"subject":{{"reference":"Patient/{pid}"}}'
        r = rand()
        org: Organization | None = None
        if r >= _NO_ORGANIZATION:
            org = ORGANIZATIONS[bisect.bisect_left(plan._weights, rand())]
        self.noise(pid, subject, org)
        if rand() < 0.65:
            self.episode(pid, subject, org)
        else:
            self.no_episode(pid, subject, org)

    def write_patient(self, pid: str, org: Organization | None, birth: str | None) -> None:
        rand = self.rand
        gender = "female" if rand() < 0.52 else "male"
        parts = [f'{{"resourceType":"Patient","id":"{pid}",{TEST_DATA},"gender":"{gender}"']
        if birth is not None:
            parts.append(f',"birthDate":"{birth}"')
        if org is not None:
            parts.append(f',"managingOrganization":{{"reference":"Organization/{org.id}"}}')
        parts.append("}")
        self.out["Patient"].append("".join(parts))

    def noise(self, pid: str, subject: str, org: Organization | None) -> None:
        rng, plan, rand = self.rng, self.plan, self.rand
        low, span = plan._start - 365, plan._span + 365 + plan.window
        for k in range(1 + int(rand() * 1.5)):
            self.encounter(f"{pid}-n{k}", subject, org, low + int(rand() * span))
        for k in range(int(rand() * 2.5)):
            day = low + int(rand() * span)
            self.out["Condition"].append(
                f'{{"resourceType":"Condition","id":"{pid}-n{k}",'
                f'"clinicalStatus":{plan._clinical["active"]},'
                f'"code":{_pick(rng, plan._noise)},{subject},'
                f'"onsetDateTime":"{self.date(day)}","recordedDate":"{self.date(day)}"}}'
            )
        for k in range(int(rand() * 2.5)):
            code, unit, lo, hi = plan._vitals[int(rand() * len(plan._vitals))]
            day = low + int(rand() * span)
            value = lo + int(rand() * (hi - lo + 1))
            self.out["Observation"].append(
                f'{{"resourceType":"Observation","id":"{pid}-n{k}","status":"final",'
                f'"code":{code},{subject},"effectiveDateTime":"{self.datetime(day)}",'
                f'"valueQuantity":{{"value":{value},{unit}}}}}'
            )

    def encounter(self, rid: str, subject: str, org: Organization | None, day: int) -> None:
        provider = (
            "" if org is None else f',"serviceProvider":{{"reference":"Organization/{org.id}"}}'
        )
        when = self.datetime(day)
        self.out["Encounter"].append(
            f'{{"resourceType":"Encounter","id":"{rid}","status":"finished",'
            '"class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode",'
            f'"code":"AMB","display":"ambulatory"}},{subject}{provider},'
            f'"period":{{"start":"{when}","end":"{when}"}}}}'
        )

    def condition(
        self,
        rid: str,
        subject: str,
        valueset: str,
        clinical: str | None,
        verification: str | None,
        form: str,
        onset: int,
        recorded: int | None,
    ) -> int | None:
        """Write a Condition; its date for the audit (onset, else recordedDate), or None."""
        plan = self.plan
        parts = [f'{{"resourceType":"Condition","id":"{rid}"']
        if clinical is not None:
            parts.append(f',"clinicalStatus":{plan._clinical[clinical]}')
        if verification is not None:
            parts.append(f',"verificationStatus":{plan._verification[verification]}')
        parts.append(f',"code":{_pick(self.rng, plan.codes[valueset])},{subject}')
        dated: int | None = onset
        if form == "datetime":
            parts.append(f',"onsetDateTime":"{self.datetime(onset)}"')
        elif form == "date":
            parts.append(f',"onsetDateTime":"{self.date(onset)}"')
        elif form == "month":
            parts.append(f',"onsetDateTime":"{self.date(onset)[:7]}"')
        elif form == "period":
            parts.append(f',"onsetPeriod":{{"start":"{self.date(onset)}"}}')
        elif form == "recorded":
            recorded = onset
        else:
            dated, recorded = None, None
        if recorded is not None:
            parts.append(f',"recordedDate":"{self.date(recorded)}"')
        parts.append("}")
        self.out["Condition"].append("".join(parts))
        return dated

    # -- patients with an episode ---------------------------------------------------------------

    def episode(self, pid: str, subject: str, org: Organization | None) -> None:
        rng, plan, rand = self.rng, self.plan, self.rand
        s = plan._start + int(rand() * plan._span)
        r = rand()
        form = (
            "datetime"
            if r < 0.5
            else "date"
            if r < 0.62
            else "month"
            if r < 0.7
            else "period"
            if r < 0.85
            else "recorded"
        )
        if form == "month":
            s = dt.date.fromordinal(s).replace(day=1).toordinal()
        a = s + plan.window
        start = dt.date.fromordinal(s)

        # The diagnoses: the first qualifying one, re-coding, and ones that must not count.
        r = rand()
        clinical = (
            "active" if r < 0.8 else "recurrence" if r < 0.85 else "relapse" if r < 0.87 else None
        )
        r = rand()
        verification = (
            "confirmed"
            if r < 0.6
            else "provisional"
            if r < 0.75
            else "differential"
            if r < 0.8
            else None
        )
        recorded = s + int(rand() * 15) if form != "recorded" and rand() < 0.6 else None
        conditions = [(RADICULOPATHY, clinical, verification, form, s, recorded)]
        if rand() < 0.25:
            later = s + 7 + int(rand() * 110)
            conditions.append((RADICULOPATHY, "active", "confirmed", "date", later, later))
        if rand() < 0.04:
            wrong = "refuted" if rand() < 0.5 else "entered-in-error"
            earlier = s - 1 - int(rand() * 30)
            conditions.append((RADICULOPATHY, "active", wrong, "date", earlier, None))
        if rand() < 0.03:
            old = s - 200 - int(rand() * 300)
            conditions.append((RADICULOPATHY, "resolved", "confirmed", "date", old, old))

        red_flag = False
        r = rand()
        if r < 0.06:  # known on A
            red_flag = True
            day = s - int(rand() * 150) if rand() < 0.5 else s + int(rand() * (plan.window + 1))
            conditions.append(
                (RED_FLAGS, "active", None, "date" if rand() < 0.7 else "recorded", day, None)
            )
        elif r < 0.075:  # after A: not known on A
            day = a + 1 + int(rand() * 120)
            conditions.append((RED_FLAGS, "active", "confirmed", "date", day, day))
        elif r < 0.085:  # refuted: does not count
            conditions.append((RED_FLAGS, "active", "refuted", "date", s, None))
        elif r < 0.09:  # undated: kept, so it counts
            red_flag = True
            conditions.append((RED_FLAGS, None, None, "none", s, None))
        if rand() < 0.5:
            rng.shuffle(conditions)
        for k, (vs, cl, ver, f, onset, rec) in enumerate(conditions):
            self.condition(f"{pid}-c{k}", subject, vs, cl, ver, f, onset, rec)

        birth, age, written = self.birth(a)
        if written:
            self.write_patient(pid, org, birth)
        for k in range(1 + int(rand() * 2.5)):
            day = s if k == 0 else s + int(rand() * (plan.window + 30))
            self.encounter(f"{pid}-e{k}", subject, org, day)

        severe = rand() < 0.45
        scores = self.pain(pid, subject, s, severe)
        care = self.care(pid, subject, org, s, a, severe)

        if not written or birth is None:
            exclusion: str | None = "no-birth-date"
        elif age < plan.min_age:
            exclusion = "under-18"
        elif red_flag:
            exclusion = "red-flag"
        else:
            exclusion = None
        reference = None if org is None or not written else f"Organization/{org.id}"
        if exclusion is not None:
            self.sink.expect(f"Patient/{pid}", reference, start, exclusion)
            return
        denominators, numerators = self.indicators(s, a, scores, care)
        self.sink.expect(f"Patient/{pid}", reference, start, None, denominators, numerators)

    def birth(self, a: int) -> tuple[str | None, int, bool]:
        """A birth date (None: absent) for an episode assessed on ``a``, the lowest age it
        gives on ``a``, and whether the Patient resource is written at all."""
        rand = self.rand
        on = dt.date.fromordinal(a)
        r = rand()
        adult = self.plan.min_age
        age = 10 + int(rand() * (adult - 10)) if r < 0.07 else adult + int(rand() * 70)
        born = dt.date.fromordinal(a - int((age + rand()) * 365.2425))
        if 0.07 <= r < 0.09 and not (on.month == 2 and on.day == 29):
            # Exactly of age on A, or of age the day after A.
            born = on.replace(year=on.year - adult)
            if r >= 0.08:
                born = born + dt.timedelta(days=1)
        r = rand()
        if r < 0.005:
            return None, 0, False
        if r < 0.035:
            return None, 0, True
        if r < 0.115:
            last = dt.date(born.year, 12, 31)
            return str(born.year), _years(min(last, on), on), True
        if r < 0.165:
            last = born.replace(day=calendar.monthrange(born.year, born.month)[1])
            return born.isoformat()[:7], _years(min(last, on), on), True
        return born.isoformat(), _years(born, on), True

    def pain(self, pid: str, subject: str, s: int, severe: bool) -> list[_Score]:
        rng, plan, rand = self.rng, self.plan, self.rand
        scores: list[_Score] = []
        count = int(rand() * 5)
        offsets = rng.sample(range(-20, plan.window + 40), count)
        for k, offset in enumerate(offsets):
            day = s + offset
            base = 7 + int(rand() * 4) if severe else 1 + int(rand() * 6)
            score = max(0, min(10, base + int(rand() * 3) - 1))
            r = rand()
            status = (
                "final"
                if r < 0.93
                else "amended"
                if r < 0.95
                else "preliminary"
                if r < 0.97
                else "entered-in-error"
            )
            parts = [
                f'{{"resourceType":"Observation","id":"{pid}-p{k}","status":"{status}",'
                f'"code":{plan.codes[PAIN_INTENSITY][0]},{subject}'
            ]
            r = rand()
            dated: int | None = day
            if r < 0.75:
                parts.append(f',"effectiveDateTime":"{self.datetime(day)}"')
            elif r < 0.85:
                parts.append(f',"effectiveDateTime":"{self.date(day)}"')
            if r < 0.95:
                if r >= 0.85 or rand() < 0.2:
                    issued = day if r >= 0.85 else day + 1
                    parts.append(f',"issued":"{self.datetime(issued)}"')
            else:
                dated = None
            if rand() < 0.6:
                parts.append(f',"valueInteger":{score}}}')
            else:
                parts.append(
                    f',"valueQuantity":{{"value":{score},"unit":"{{score}}",'
                    f'"system":"{UCUM}","code":"{{score}}"}}}}'
                )
            self.out["Observation"].append("".join(parts))
            scores.append(_Score(dated, score, status in PAIN_COUNTS))
        return scores

    # -- care ---------------------------------------------------------------------------------

    def care(
        self, pid: str, subject: str, org: Organization | None, s: int, a: int, severe: bool
    ) -> list[_Care]:
        rng, rand = self.rng, self.rand
        care: list[_Care] = []
        profile = ORGANIZATIONS[-1] if org is None else org
        for valueset, chance in (
            (MRI, profile.mri),
            (INJECTION, profile.injection),
            (ACUPUNCTURE, profile.acupuncture),
            (BED_REST, profile.bed_rest),
        ):
            if rand() < chance:
                care.append(self.in_window(valueset, s, a))
            if rand() < 0.06:
                care.append(self.decoy(valueset, s, a))
        exercise = (SUPERVISED, SUPERVISED, SPECIFIC, MOBILISATION, MOBILISATION)
        if rand() < profile.exercise:
            care.append(self.in_window(_pick(rng, exercise), s, a))
        if rand() < 0.1:
            care.append(self.decoy(_pick(rng, exercise), s, a))
        if (severe and rand() < profile.surgeon) or rand() < 0.05:
            care.append(self.referral(s, a))
        if rand() < 0.05:
            care.append(self.decoy(SPINE_SURGEON, s, a))
        for k, item in enumerate(care):
            self.write_care(f"{pid}-{k}", subject, item)
        return care

    def in_window(self, valueset: str, s: int, a: int) -> _Care:
        rand = self.rand
        r = rand()
        day = s if r < 0.05 else a if r < 0.1 else s + int(rand() * (a - s + 1))
        if rand() < 0.55:
            return _Care(PROCEDURE, valueset, "completed" if rand() < 0.85 else "in-progress", day)
        return _Care(REQUEST, valueset, "active" if rand() < 0.5 else "completed", day)

    def decoy(self, valueset: str, s: int, a: int) -> _Care:
        """Care that must not count in W: a status that does not count, a date outside W, or
        no date."""
        rng, rand = self.rng, self.rand
        kind = PROCEDURE if rand() < 0.5 else REQUEST
        done = "completed"
        r = rand()
        if r < 0.4:
            return _Care(kind, valueset, _pick(rng, NOT_DONE[kind]), s + int(rand() * (a - s + 1)))
        if r < 0.7:
            return _Care(kind, valueset, done, s - 1 - int(rand() * 60))
        if r < 0.9:
            return _Care(kind, valueset, done, a + 1 + int(rand() * 90))
        return _Care(kind, valueset, done, None)

    def referral(self, s: int, a: int) -> _Care:
        rand = self.rand
        day = s + int(rand() * (a - s + 1))
        r = rand()
        if r < 0.4:
            return _Care(REQUEST, SPINE_SURGEON, "active", day)
        if r < 0.6:
            return _Care(REQUEST, SPINE_SURGEON, "completed", day)
        if r < 0.9:
            return _Care(PROCEDURE, SPINE_SURGEON, "completed", day)
        return _Care(PROCEDURE, SPINE_SURGEON, "in-progress", day)

    def write_care(self, rid: str, subject: str, care: _Care) -> None:
        rng, rand = self.rng, self.rand
        code = _pick(rng, self.plan.codes[care.valueset])
        head = f'{{"resourceType":"{care.kind}","id":"{rid}","status":"{care.status}"'
        if care.kind == REQUEST:
            head += ',"intent":"order"'
        line = f'{head},"code":{code},{subject}'
        day = care.day
        if day is not None:
            r = rand()
            if care.kind == PROCEDURE:
                if r < 0.75:
                    line += f',"performedDateTime":"{self.datetime(day)}"'
                else:
                    end = self.date(day + int(rand() * 20))
                    line += f',"performedPeriod":{{"start":"{self.date(day)}","end":"{end}"}}'
            elif r < 0.7:
                line += f',"authoredOn":"{self.datetime(day)}"'
                if rand() < 0.3:
                    line += f',"occurrenceDateTime":"{self.date(day + int(rand() * 40))}"'
            else:
                line += f',"occurrenceDateTime":"{self.date(day)}"'
        self.out[care.kind].append(line + "}")

    # -- what the audit must find ---------------------------------------------------------------

    def indicators(
        self, s: int, a: int, scores: list[_Score], care: list[_Care]
    ) -> tuple[list[str], list[str]]:
        """The denominators and numerators an episode in scope meets (AUDIT_SPEC.md)."""
        denominators = list(IN_WINDOW)
        numerators = [
            indicator
            for indicator, valuesets in IN_WINDOW.items()
            if any(
                c.valueset in valuesets
                and c.status in DONE[c.kind]
                and c.day is not None
                and s <= c.day <= a
                for c in care
            )
        ]
        # The case on A: the latest counting pain score known on A, the treatment tried and
        # the spine surgeon, from what is known on A (dated on or before A, or undated).
        latest = max(
            ((x.day, x.score) for x in scores if x.counts and x.day is not None and x.day <= a),
            default=None,
        )
        known = [c for c in care if c.day is None or c.day <= a]
        severe = latest is not None and latest[1] >= self.plan.threshold
        tried = any(c.valueset in TREATMENTS and c.status in TRIED[c.kind] for c in known)
        if severe and tried:
            denominators.append(SURGEON_BY_DAY_84)
            if any(c.valueset == SPINE_SURGEON and c.status in DONE[c.kind] for c in known):
                numerators.append(SURGEON_BY_DAY_84)
        return denominators, numerators

    # -- patients without an episode ------------------------------------------------------------

    def no_episode(self, pid: str, subject: str, org: Organization | None) -> None:
        plan, rand = self.plan, self.rand
        day = plan._start + int(rand() * plan._span)
        r = rand()
        if r < 0.06:
            wrong = "refuted" if rand() < 0.5 else "entered-in-error"
            self.condition(f"{pid}-c0", subject, RADICULOPATHY, "active", wrong, "date", day, day)
        elif r < 0.09:
            self.condition(f"{pid}-c0", subject, RADICULOPATHY, "active", None, "none", day, None)
        elif r < 0.12:
            self.condition(
                f"{pid}-c0", subject, RADICULOPATHY, "resolved", "confirmed", "date", day, day
            )
        elif r < 0.15:
            self.condition(f"{pid}-c0", subject, RED_FLAGS, "active", "confirmed", "date", day, day)
        age = 4 + int(rand() * 90)
        born = dt.date.fromordinal(day - int((age + rand()) * 365.2425))
        self.write_patient(pid, org, born.isoformat())
        reference = None if org is None else f"Organization/{org.id}"
        self.sink.expect(f"Patient/{pid}", reference, None, None)
