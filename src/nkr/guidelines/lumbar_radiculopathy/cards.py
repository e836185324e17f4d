"""The guideline's CDS Hooks services and card rules (being moved here: issue 10)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from nkr._assessment import Assessment
from nkr._guideline import Lang, Localized
from nkr._package import ServiceSpec

if TYPE_CHECKING:
    from nkr.cdshooks._kit import CardKit
    from nkr.guidelines.lumbar_radiculopathy import LumbarRadiculopathy

SERVICE_PREFIX = "nkr-lumbal-radikulopati"
HOOKS: tuple[str, ...] = ("patient-view", "order-select", "order-sign")


def services(package: LumbarRadiculopathy) -> tuple[ServiceSpec, ...]:
    tx = package.texts

    def localized(key: str) -> Localized:
        return Localized(da=tx(key, "da"), en=tx(key, "en"))

    return tuple(
        ServiceSpec(
            f"{SERVICE_PREFIX}-{hook}",
            hook,
            localized(f"services.{hook}.title"),
            localized(f"services.{hook}.description"),
        )
        for hook in HOOKS
    )


def cards(package: LumbarRadiculopathy, hook: str, assessment: Assessment, kit: CardKit) -> None:
    raise NotImplementedError


def topic_label(package: LumbarRadiculopathy, topic: str, lang: Lang) -> str | None:
    raise NotImplementedError
