"""Deployment settings, read once from ``NKR_*`` environment variables at start-up.

Also holds the defaults for the software's own assumptions: configurable, and never presented
as guideline fact.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import re
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from nkr._clock import DEFAULT_TIMEZONE, today
from nkr._errors import InputError, describe_validation_error

# The guideline the interfaces use when several are installed and NKR_GUIDELINE names none: the
# one nkr ships (the only place outside nkr.guidelines that names it).
DEFAULT_GUIDELINE = "nkr-lumbal-radikulopati"

# A Host header value (RFC 9110: uri-host [":" port]) as nkr accepts it: a DNS-style name or
# IPv4 address, or an IPv6 address in brackets, and ASCII digits for the port. Anything else
# (userinfo, spaces, a path, non-ASCII) is not a host.
_HOST = re.compile(
    r"(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,251}[A-Za-z0-9_])?)"
    r"(?::(?P<port>[0-9]{1,5}))?",
    re.ASCII,
)


def host_name(value: str) -> str | None:
    """The host of a Host header value or ``NKR_ALLOWED_HOSTS`` entry, lower-cased and without
    its port (IPv6 in brackets); None when it is not a well-formed host."""
    match = _HOST.fullmatch(value)
    if match is None or (match["port"] is not None and int(match["port"]) > 65535):
        return None
    host = match["host"].lower()
    if host.startswith("["):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return None
        return host
    if any(not 0 < len(label) <= 63 for label in host.split(".")):
        return None
    return host


class Settings(BaseModel):
    """Everything a deployment can configure. Each field maps to ``NKR_<FIELD>``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    data_dir: Path = Path("data")
    cors_origins: tuple[str, ...] = ()
    # JWT: allowed issuers, as "issuer=jwks-url-or-file" pairs. Empty means auth is off.
    jwt_issuers: tuple[str, ...] = ()
    max_body_bytes: int = Field(default=1_000_000, ge=1_000)
    fhir_timeout_seconds: float = Field(default=3.0, gt=0, le=30)
    # The service's public base URL (e.g. "https://cds.example.org"), when it runs behind a
    # proxy: card links point there, and a JWT's aud must be this base plus the endpoint path.
    # Unset: taken from the request (scheme, Host header, root path).
    public_base_url: str | None = Field(default=None, pattern=r"^https?://[^\s/?#@]+(/[^\s?#@]*)?$")
    # URL prefixes of the FHIR servers the CDS Hooks service may fetch missing prefetch from
    # (e.g. "https://ehr.example.org/fhir/"). Empty: nkr fetches from no server at all (deny
    # by default); a request that lacks a prefetch key then gets 412.
    fhir_servers: tuple[str, ...] = ()
    # The most bytes nkr reads from FHIR servers for one call (every answer to it, all keys
    # and pages together, gzip inflated); more is cut off while streaming and the call gets 412.
    fhir_max_response_bytes: int = Field(default=4_000_000, ge=10_000)
    # How many prefetch fetches may be in flight at once (across all calls of a worker);
    # beyond it a call that needs one gets 503 with Retry-After.
    fhir_max_concurrent_fetches: int = Field(default=16, ge=1, le=1000)
    # The most bytes of request headers (all names and values together); larger: 431.
    max_header_bytes: int = Field(default=16_384, ge=1_024, le=1_048_576)
    # The longest bearer token looked at; longer: 401 before any JWT work.
    max_token_bytes: int = Field(default=8_192, ge=256, le=65_536)
    # Host header values the service answers to, compared lower-cased and without port ("*"
    # for any well-formed host). The host of NKR_PUBLIC_BASE_URL is always allowed. Other Host
    # values get 400 (nkr._middleware.RequestHeadGuard).
    allowed_hosts: tuple[str, ...] = ("localhost", "127.0.0.1", "[::1]")
    # Addresses (or networks) of reverse proxies whose X-Forwarded-Proto/-For headers are
    # trusted; none by default (nkr serve passes them to uvicorn's forwarded_allow_ips).
    trusted_proxies: tuple[str, ...] = ()
    # How long issued-card records (for feedback) are kept, in days; older ones are pruned.
    card_retention_days: int = Field(default=90, ge=1, le=3650)
    # Bearer token that GET /metrics requires; unset: /metrics is off (404).
    metrics_token: str | None = Field(default=None, min_length=16)
    # The time zone whose date is "today" for every assessment (web, CDS Hooks, CLI).
    timezone: str = DEFAULT_TIMEZONE
    # The folder `nkr audit --out` writes into (or the parent of several such folders): `nkr
    # serve` shows its newest report.html at /audit, read-only. Unset: /audit is off (404).
    audit_dir: Path | None = None
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

    @field_validator("fhir_servers")
    @classmethod
    def _fhir_server_bases(cls, urls: tuple[str, ...]) -> tuple[str, ...]:
        # Checked as the CDS Hooks service will read them, so that a bad entry stops start-up
        # with one line (which names the entry by number: it could hold a password).
        from nkr.fhir._fetch import FhirServers

        FhirServers(urls)
        return urls

    @field_validator("allowed_hosts")
    @classmethod
    def _hosts(cls, hosts: tuple[str, ...]) -> tuple[str, ...]:
        for host in hosts:
            if host != "*" and host_name(host) is None:
                raise ValueError(f"'{host}' is not a host name or address (or '*')")
        return hosts

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, proxies: tuple[str, ...]) -> tuple[str, ...]:
        for proxy in proxies:
            try:
                if proxy != "*":
                    ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"'{proxy}' is not an IP address or network (e.g. 10.0.0.5 or 10.0.0.0/24)"
                ) from None
        return proxies

    @model_validator(mode="after")
    def _auth_needs_a_public_url(self) -> Settings:
        if self.jwt_issuers and self.public_base_url is None:
            raise ValueError(
                "public_base_url: required when NKR_JWT_ISSUERS is set (a JWT's aud is "
                "checked against it, never against the request's Host header)"
            )
        return self

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
