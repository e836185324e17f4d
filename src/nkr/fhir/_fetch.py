"""Prefetch: the FHIR queries the services ask for, and fetching what the EHR did not send.

Nothing here logs: URLs, tokens and bodies all carry patient data or secrets.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final
from urllib.parse import urlsplit

import httpx
import orjson

from nkr._errors import InputError

Resource = dict[str, Any]

# httpx logs every request's URL at INFO level, and these URLs carry patient ids.
logging.getLogger("httpx").setLevel(logging.WARNING)

PREFETCH_TEMPLATES: Final[Mapping[str, str]] = MappingProxyType(
    {
        "patient": "Patient/{{context.patientId}}",
        "conditions": "Condition?patient={{context.patientId}}",
        "observations": "Observation?patient={{context.patientId}}&code=http://loinc.org|72514-3",
        "procedures": "Procedure?patient={{context.patientId}}",
        "serviceRequests": "ServiceRequest?patient={{context.patientId}}",
    }
)

# Search results are read page by page up to this bound; more pages than this is an answer
# nkr cannot use safely (the latest pain score could be on a page it never read).
MAX_PAGES: Final = 10

_TOKEN = re.compile(r"\{\{\s*context\.([A-Za-z][A-Za-z0-9]*)\s*\}\}")
_ANY_TOKEN = re.compile(r"\{\{.*?\}\}")
# FHIR's id type (and not only dots): also keeps a context value from changing the query's
# path or parameters.
_FHIR_ID = re.compile(r"(?=.*[A-Za-z0-9])[A-Za-z0-9\-.]{1,64}")


class PrefetchUnavailable(Exception):
    """A prefetch key that the request lacks and nkr could not fetch (CDS Hooks: HTTP 412).

    The message names the key and the reason, never a URL, token or patient value.
    """

    def __init__(self, key: str, reason: str) -> None:
        super().__init__(f"prefetch {key}: {reason}")
        self.key = key
        self.reason = reason


def fill_template(template: str, context: Mapping[str, Any]) -> str:
    """The query of a prefetch template, with ``{{context.X}}`` replaced by the context value.

    Raises :class:`~nkr.InputError` when a value is missing or is not a FHIR id, and
    ``ValueError`` for a token other than ``{{context.X}}``.
    """

    def value(m: re.Match[str]) -> str:
        name = m[1]
        given = context.get(name)
        if not isinstance(given, str) or _FHIR_ID.fullmatch(given) is None:
            raise InputError(f"context.{name}: required by the prefetch, a FHIR id")
        return given

    filled = _TOKEN.sub(value, template)
    if _ANY_TOKEN.search(filled):
        raise ValueError(f"unsupported prefetch token in {template!r}")
    return filled


def resources_from_prefetch(key: str, value: object) -> list[Resource]:
    """The resources of one prefetch value: a searchset Bundle's ``entry[].resource``, a single
    resource as a one-item list, ``None`` (no data) as an empty list. Raises
    :class:`~nkr.InputError` naming ``prefetch.<key>`` when the shape is wrong."""
    if value is None:
        return []
    where = f"prefetch.{key}"
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a FHIR resource or Bundle (JSON object)")
    if value.get("resourceType") != "Bundle":
        return [value]
    return bundle_entries(value.get("entry"), where)


def bundle_entries(entries: object, where: str) -> list[Resource]:
    """The resources of a Bundle's ``entry`` list (entries without one are skipped). Raises
    :class:`~nkr.InputError` naming ``<where>.entry…`` when the shape is wrong."""
    if entries is None:
        return []
    if type(entries) is list:
        try:
            # The common case, fast: every entry an object with a resource object.
            resources = [e["resource"] for e in entries]
            if all(type(r) is dict for r in resources):
                return resources
        except (TypeError, KeyError):
            pass
    if not isinstance(entries, list):
        raise InputError(f"{where}.entry: expected a list")
    out: list[Resource] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise InputError(f"{where}.entry[{i}]: expected a JSON object")
        resource = entry.get("resource")
        if resource is None:
            continue
        if not isinstance(resource, dict):
            raise InputError(f"{where}.entry[{i}].resource: expected a FHIR resource")
        out.append(resource)
    return out


def _next_link(bundle: Resource) -> object:
    links = bundle.get("link")
    if not isinstance(links, list):
        return None
    for link in links:
        if isinstance(link, dict) and link.get("relation") == "next":
            return link.get("url")
    return None


def _base(fhir_server: str) -> str:
    parts = urlsplit(fhir_server)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("not an http(s) URL")
    return fhir_server.rstrip("/") + "/"


def _same_server(url: str, base: str) -> bool:
    a, b = urlsplit(url), urlsplit(base)
    # HAPI-style next links point at the base itself ("{base}?_getpages=..."), without a slash.
    path = a.path.rstrip("/") + "/"
    return (a.scheme, a.netloc) == (b.scheme, b.netloc) and path.startswith(b.path)


@dataclass(frozen=True, slots=True)
class _Getter:
    client: httpx.AsyncClient
    headers: dict[str, str]
    timeout: httpx.Timeout


async def _get_json(get: _Getter, url: str, key: str) -> dict[str, Any]:
    try:
        response = await get.client.get(url, headers=get.headers, timeout=get.timeout)
    except httpx.TimeoutException:
        raise PrefetchUnavailable(key, "the FHIR server did not answer in time") from None
    except httpx.HTTPError as exc:
        raise PrefetchUnavailable(
            key, f"the FHIR server could not be reached ({type(exc).__name__})"
        ) from None
    if response.status_code != 200:
        raise PrefetchUnavailable(key, f"the FHIR server answered HTTP {response.status_code}")
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        raise PrefetchUnavailable(key, "the FHIR server's answer is not JSON") from None
    if not isinstance(data, dict):
        raise PrefetchUnavailable(key, "the FHIR server's answer is not a FHIR resource")
    return data


async def _fetch_one(get: _Getter, base: str, key: str, query: str, max_pages: int) -> Resource:
    data = await _get_json(get, base + query, key)
    if "?" not in query:
        expected = query.split("/", 1)[0]
        if data.get("resourceType") != expected:
            raise PrefetchUnavailable(key, f"the FHIR server did not return a {expected}")
        return data
    if data.get("resourceType") != "Bundle":
        raise PrefetchUnavailable(key, "the FHIR server did not return a Bundle")
    entries: list[Any] = []
    for page in range(max_pages):
        page_entries = data.get("entry") or []
        if not isinstance(page_entries, list):
            raise PrefetchUnavailable(key, "the FHIR server's Bundle.entry is not a list")
        entries.extend(page_entries)
        next_url = _next_link(data)
        if not isinstance(next_url, str):
            return {"resourceType": "Bundle", "type": "searchset", "entry": entries}
        if page + 1 == max_pages:
            break
        if not _same_server(next_url, base):
            # The bearer token must never go to another server.
            raise PrefetchUnavailable(key, "the next page is on another server")
        data = await _get_json(get, next_url, key)
        if data.get("resourceType") != "Bundle":
            raise PrefetchUnavailable(key, "the FHIR server did not return a Bundle")
    raise PrefetchUnavailable(key, f"more than {max_pages} pages of results")


async def fetch_missing_prefetch(
    *,
    prefetch: Mapping[str, Any],
    context: Mapping[str, Any],
    fhir_server: str | None,
    fhir_authorization: Mapping[str, Any] | None,
    timeout_seconds: float,
    templates: Mapping[str, str] = PREFETCH_TEMPLATES,
    client: httpx.AsyncClient | None = None,
    max_pages: int = MAX_PAGES,
) -> dict[str, Any]:
    """The prefetch with every key of ``templates`` that ``prefetch`` lacks fetched from
    ``fhir_server`` (keys given as ``null`` mean "no data" and are kept as they are).

    Fetched keys hold what a prefetch would: the Patient, or a searchset Bundle with the entries
    of every page. Requests send ``Authorization: Bearer <access_token>`` when
    ``fhir_authorization`` has one, and the whole fetch must finish within ``timeout_seconds``.
    Raises :class:`PrefetchUnavailable` naming a key that cannot be had, and
    :class:`~nkr.InputError` when the context lacks a value a template needs.
    """
    missing = [key for key in templates if key not in prefetch]
    result = dict(prefetch)
    if not missing:
        return result
    queries = {key: fill_template(templates[key], context) for key in missing}
    if not fhir_server:
        raise PrefetchUnavailable(missing[0], "missing, and the request has no fhirServer")
    try:
        base = _base(fhir_server)
    except ValueError:
        raise PrefetchUnavailable(missing[0], "fhirServer is not an http(s) URL") from None
    headers = {"Accept": "application/fhir+json"}
    token = (fhir_authorization or {}).get("access_token")
    if isinstance(token, str) and token:
        headers["Authorization"] = f"Bearer {token}"
    timeout = httpx.Timeout(timeout_seconds)
    get = _Getter(client or httpx.AsyncClient(follow_redirects=False), headers, timeout)
    try:
        # A task group cancels the other queries as soon as one fails.
        async with asyncio.timeout(timeout_seconds), asyncio.TaskGroup() as group:
            tasks = {
                key: group.create_task(_fetch_one(get, base, key, query, max_pages))
                for key, query in queries.items()
            }
    except TimeoutError:
        keys = ", ".join(missing)
        raise PrefetchUnavailable(keys, "the FHIR server did not answer in time") from None
    except ExceptionGroup as failed:
        unavailable = _first_unavailable(failed)
        if unavailable is None:
            raise
        raise unavailable from None
    finally:
        if client is None:
            await get.client.aclose()
    result.update({key: task.result() for key, task in tasks.items()})
    return result


def _first_unavailable(group: BaseExceptionGroup[BaseException]) -> PrefetchUnavailable | None:
    for exc in group.exceptions:
        if isinstance(exc, PrefetchUnavailable):
            return exc
        if isinstance(exc, BaseExceptionGroup):
            found = _first_unavailable(exc)
            if found is not None:
                return found
    return None
