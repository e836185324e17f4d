"""nkr: clinical decision support for Danish national clinical guidelines (NKR).

The generic engine's types, the guideline interface and what a guideline package builds on
(its rule book, its texts). Each guideline is a package of its own (``nkr.guidelines.*``, or
installed separately), found through the registry; see docs/architecture.md.
"""

from nkr._assessment import (
    Assessment,
    Deadline,
    Fact,
    Notice,
    Outcome,
    Reason,
    RecommendationResult,
    RecStatus,
    Term,
)
from nkr._cpg import CpgSpec, load_cpg
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
from nkr._rules import RuleBook
from nkr._texts import Texts, generic_texts, load_texts

__all__ = [
    "LANGS",
    "Assessment",
    "Certainty",
    "CpgSpec",
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
    "Outcome",
    "Reason",
    "RecStatus",
    "Recommendation",
    "RecommendationResult",
    "Registry",
    "RuleBook",
    "ServiceSpec",
    "Strength",
    "Term",
    "Texts",
    "discover",
    "generic_texts",
    "load_cpg",
    "load_guideline",
    "load_texts",
    "registry",
]
