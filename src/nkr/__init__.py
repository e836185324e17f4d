"""nkr: clinical decision support for Danish national clinical guidelines (NKR)."""

from nkr._assessment import (
    Assessment,
    Reason,
    RecommendationResult,
    RecStatus,
    SafetyNotice,
    Term,
)
from nkr._errors import InputError
from nkr._guideline import (
    LANGS,
    Certainty,
    Direction,
    Guideline,
    Kind,
    Lang,
    Localized,
    Recommendation,
    Strength,
    load_guideline,
)
from nkr._settings import DEFAULT_PAIN_THRESHOLD
from nkr.guidelines.lumbar_radiculopathy import Case, evaluate, guideline, parse_case

__all__ = [
    "DEFAULT_PAIN_THRESHOLD",
    "LANGS",
    "Assessment",
    "Case",
    "Certainty",
    "Direction",
    "Guideline",
    "InputError",
    "Kind",
    "Lang",
    "Localized",
    "Reason",
    "RecStatus",
    "Recommendation",
    "RecommendationResult",
    "SafetyNotice",
    "Strength",
    "Term",
    "evaluate",
    "guideline",
    "load_guideline",
    "parse_case",
]
