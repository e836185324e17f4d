"""ASGI middleware of the one application: limits on request body and head size, and the
check of the Host header."""

from __future__ import annotations

from collections.abc import Iterable
from urllib.parse import urlsplit

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nkr._settings import host_name
from nkr.fhir._outcome import FHIR_JSON, IssueType, operation_outcome

# Paths whose answers carry nothing derived from the Host header, and that orchestrators and
# scrapers call by a pod's address: not subject to NKR_ALLOWED_HOSTS.
HOST_FREE_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


class _TooLarge(Exception):
    pass


async def _send_and_close(send: Send, status: int, content_type: bytes, body: bytes) -> None:
    """An answer the application never saw, and the end of the connection."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                (b"x-content-type-options", b"nosniff"),
                (b"content-security-policy", b"default-src 'none'"),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Answer 413 (with an OperationOutcome) to a body over ``max_bytes``: at once when the
    ``Content-Length`` says so, or as soon as a streamed body grows past the limit."""

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Send) -> None:
        body = orjson.dumps(
            operation_outcome(
                "too-costly", f"the request body is larger than {self.max_bytes} bytes"
            )
        )
        await _send_and_close(send, 413, FHIR_JSON.encode(), body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope["headers"]:
            if name == b"content-length":
                if value.isdigit() and int(value) > self.max_bytes:
                    await self._reject(send)
                    return
                break
        received = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise _TooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await self._reject(send)


class RequestHeadGuard:
    """Before the application reads anything: 431 for a request head (request line and
    headers) over ``max_header_bytes``, and 400 for a Host header that is malformed, repeated
    or not an allowed host.

    ``nkr serve``'s HTTP protocols (``nkr._http``) refuse an oversized head while it arrives;
    the size check here is for any other ASGI server, which hands over headers only once they
    are all buffered. The Host check is why a Host header can reach no card link, redirect or
    page: nothing derives a URL from a host that is not allowed. ``allowed_hosts`` entries
    and Host values are compared lower-cased and without port; ``"*"`` allows any
    well-formed host; the host of ``public_base_url`` is always allowed. A request without
    a Host header (HTTP/1.0) passes: the server's own address stands in for it.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_header_bytes: int,
        allowed_hosts: Iterable[str],
        public_base_url: str | None,
        api_paths: tuple[str, ...],
    ) -> None:
        self.app = app
        self.max_header_bytes = max_header_bytes
        self.api_paths = api_paths
        hosts = tuple(allowed_hosts)
        self.any_host = "*" in hosts
        allowed = {name for h in hosts if h != "*" and (name := host_name(h)) is not None}
        public = urlsplit(public_base_url).hostname if public_base_url else None
        if public:
            allowed.add(f"[{public}]" if ":" in public else public)
        self.allowed = frozenset(allowed)

    def _host_problem(self, scope: Scope) -> str | None:
        values = [value for name, value in scope["headers"] if name == b"host"]
        if not values:
            return None
        if len(values) > 1:
            return "the request has more than one Host header"
        name = host_name(values[0].decode("latin-1"))
        if name is None:
            return "the Host header is not a well-formed host[:port]"
        if self.any_host or name in self.allowed:
            return None
        return "the Host header names a host this service does not answer to (NKR_ALLOWED_HOSTS)"

    async def _answer(
        self, scope: Scope, send: Send, status: int, code: IssueType, text: str
    ) -> None:
        api = status == 431 or scope["path"].startswith(self.api_paths)
        if api:
            body = orjson.dumps(operation_outcome(code, text))
            content_type = FHIR_JSON.encode()
        else:
            body = f"{status} Bad Request: {text}\n".encode()
            content_type = b"text/plain; charset=utf-8"
        await _send_and_close(send, status, content_type, body)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        size = len(scope.get("raw_path") or scope["path"]) + len(scope["query_string"])
        for name, value in scope["headers"]:
            size += len(name) + len(value) + 4
        if size > self.max_header_bytes:
            text = f"the request line and headers are larger than {self.max_header_bytes} bytes"
            await self._answer(scope, send, 431, "too-costly", text)
            return
        if scope["path"] not in HOST_FREE_PATHS:
            problem = self._host_problem(scope)
            if problem is not None:
                await self._answer(scope, send, 400, "invalid", problem)
                return
        await self.app(scope, receive, send)
