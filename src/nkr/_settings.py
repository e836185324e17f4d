"""Deployment settings, read once from ``NKR_*`` environment variables at start-up.

Also holds the defaults for the software's own assumptions: configurable, and never presented
as guideline fact.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from nkr._clock import DEFAULT_TIMEZONE, today
from nkr._errors import InputError, describe_validation_error

# The guideline does not define "severe and disabling pain". Where nkr derives it from a 0-10
# pain score (NRS), this is the threshold it assumes unless a deployment configures another.
DEFAULT_PAIN_THRESHOLD = 7


class Settings(BaseModel):
    """Everything a deployment can configure. Each field maps to ``NKR_<FIELD>``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Path("data")
    pain_threshold: int = Field(default=DEFAULT_PAIN_THRESHOLD, ge=0, le=10)
    # A folder of extra value-set files with a deployment's local codes.
    valueset_dir: Path | None = None
    cors_origins: tuple[str, ...] = ()
    # JWT: allowed issuers, as "issuer=jwks-url-or-file" pairs. Empty means auth is off.
    jwt_issuers: tuple[str, ...] = ()
    max_body_bytes: int = Field(default=1_000_000, ge=1_000)
    fhir_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    # The service's public base URL (e.g. "https://cds.example.org"), when it runs behind a
    # proxy: card links point there, and a JWT's aud must be this base plus the endpoint path.
    # Unset: taken from the request (scheme, Host header, root path).
    public_base_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#]+(/[^\s?#]*)?$")
    # URL prefixes of the FHIR servers the CDS Hooks service may fetch missing prefetch from
    # (e.g. "https://ehr.example.org/fhir/"). Empty: any http(s) server a caller names, which
    # is safe only with JWT authentication on.
    fhir_servers: tuple[str, ...] = ()
    # The time zone whose date is "today" for every assessment (web, CDS Hooks, CLI).
    timezone: str = DEFAULT_TIMEZONE
    # Benchmark only: also serve POST /_bench/parse, which parses the body and nothing more.
    bench_endpoint: bool = False

    @field_validator("jwt_issuers")
    @classmethod
    def _issuer_pairs(cls, pairs: tuple[str, ...]) -> tuple[str, ...]:
        for pair in pairs:
            issuer, sep, source = pair.partition("=")
            if not (sep and issuer.strip() and source.strip()):
                raise ValueError(f"'{pair}' is not 'issuer=jwks-url-or-file'")
        return pairs

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, name: str) -> str:
        try:
            ZoneInfo(name)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"'{name}' is not a known time zone (e.g. Europe/Copenhagen)"
            ) from None
        return name

    def today(self) -> dt.date:
        """The assessment date now: today in the configured time zone."""
        return today(self.timezone)

    @field_validator("public_base_url")
    @classmethod
    def _no_trailing_slash(cls, url: str | None) -> str | None:
        return None if url is None else url.rstrip("/")

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Settings from ``NKR_*`` variables; list values are comma-separated."""
        env = os.environ if environ is None else environ
        raw: dict[str, object] = {}
        for name, field in cls.model_fields.items():
            value = env.get(f"NKR_{name.upper()}")
            if value is None:
                continue
            if str(field.annotation).startswith("tuple"):
                raw[name] = tuple(v.strip() for v in value.split(",") if v.strip())
            else:
                raw[name] = value
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            where, _, problem = describe_validation_error(exc).partition(": ")
            raise InputError(f"setting NKR_{where.upper()}: {problem}") from None
