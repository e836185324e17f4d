"""The CDS Hooks 2.0 response shape as strict pydantic models, for checking real responses.

Written from the specification (cds-hooks.org, v2.0.1): the fields a card and its parts may
have, their types and the rules between them. Unknown fields are refused, so a typo in the
service shows up here.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Coding(_Strict):
    system: str | None = None
    code: str = Field(min_length=1)
    display: str | None = None


class Source(_Strict):
    label: str = Field(min_length=1)
    url: str | None = None
    icon: str | None = None
    topic: Coding | None = None


class Action(_Strict):
    type: Literal["create", "update", "delete"]
    description: str = Field(min_length=1)
    resource: dict[str, Any] | None = None
    resourceId: str | None = None

    @model_validator(mode="after")
    def _what(self) -> Self:
        if self.type in ("create", "update"):
            assert self.resource is not None, "create/update needs a resource"
            assert isinstance(self.resource.get("resourceType"), str)
        else:
            assert self.resourceId is not None, "delete needs a resourceId"
            kind, _, rid = self.resourceId.partition("/")
            assert kind, "resourceId must be a relative reference 'Type/id'"
            assert rid, "resourceId must be a relative reference 'Type/id'"
        return self


class Suggestion(_Strict):
    label: str = Field(min_length=1)
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[Action] | None = None


class Link(_Strict):
    label: str = Field(min_length=1)
    url: str = Field(pattern=r"^https?://")
    type: Literal["absolute", "smart"]
    appContext: str | None = None


class Card(_Strict):
    uuid: str
    summary: str = Field(min_length=1, max_length=139)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: Source
    suggestions: list[Suggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[Coding] | None = None
    links: list[Link] | None = None

    @field_validator("uuid")
    @classmethod
    def _is_uuid(cls, value: str) -> str:
        uuid.UUID(value)
        return value

    @model_validator(mode="after")
    def _selection(self) -> Self:
        if self.suggestions:
            assert self.selectionBehavior is not None, "suggestions need selectionBehavior"
        return self


class CdsResponse(_Strict):
    cards: list[Card]
    systemActions: list[Action] | None = None


def check_response(body: object) -> list[dict[str, Any]]:
    """The cards of ``body`` once it passes as a CDS Hooks 2.0 response."""
    CdsResponse.model_validate(body)
    assert isinstance(body, dict)
    cards: list[dict[str, Any]] = body["cards"]
    return cards
