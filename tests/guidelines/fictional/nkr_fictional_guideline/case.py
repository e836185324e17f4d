"""The fictional case: an age, a fictional score and a first visit (tests only)."""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from nkr._errors import parse_model

Planned = Literal["fiktiv_pille", "fiktiv_samtale"]


class FictionalCase(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", strict=True)

    version: Literal[1] = 1
    age: int = Field(ge=0, le=130)
    # The fictional guideline's own field: a score from 0 to 10.
    score: int = Field(ge=0, le=10)
    first_visit: dt.date
    followed_up: bool = False
    planned: frozenset[Planned] = frozenset()


def parse_case(data: bytes | str | dict[str, Any]) -> FictionalCase:
    return parse_model(FictionalCase, data)
