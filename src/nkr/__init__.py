"""nkr: clinical decision support for Danish national clinical guidelines (NKR).

The generic engine's types and the guideline interface. Each guideline is a package of its
own (``nkr.guidelines.*``, or installed separately), found through the registry.
"""

from nkr._assessment import (
    Assessment,
    Deadline,
    Fact,
    Notice,
    Reason,
    RecommendationResult,
    RecStatus,
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
from nkr._package import GuidelinePackage, Registry, ServiceSpec, discover, registry

__all__ = [
    "LANGS",
    "Assessment",
    "Certainty",
    "Deadline",
    "Direction",
    "Fact",
    "Guideline",
    "GuidelinePackage",
    "InputError",
    "Kind",
    "Lang",
    "Localized",
    "Notice",
    "Reason",
    "RecStatus",
    "Recommendation",
    "RecommendationResult",
    "Registry",
    "ServiceSpec",
    "Strength",
    "Term",
    "discover",
    "load_guideline",
    "registry",
]
