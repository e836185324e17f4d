"""The three CDS Hooks services of the guideline and their discovery document."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nkr._guideline import LANGS, Lang
from nkr.cdshooks._texts import texts

SERVICE_PREFIX = "nkr-lumbal-radikulopati"
HOOKS: tuple[str, ...] = ("patient-view", "order-select", "order-sign")


@dataclass(frozen=True, slots=True)
class Service:
    id: str
    hook: str


SERVICES: dict[str, Service] = {
    f"{SERVICE_PREFIX}-{hook}": Service(f"{SERVICE_PREFIX}-{hook}", hook) for hook in HOOKS
}


def discovery(prefetch: dict[str, str]) -> dict[Lang, dict[str, Any]]:
    """``GET /cds-services`` in each language."""
    tx = texts()
    return {
        lang: {
            "services": [
                {
                    "hook": s.hook,
                    "id": s.id,
                    "title": tx(f"services.{s.hook}.title", lang),
                    "description": tx(f"services.{s.hook}.description", lang),
                    "prefetch": dict(prefetch),
                }
                for s in SERVICES.values()
            ]
        }
        for lang in LANGS
    }
