"""uvicorn HTTP protocols that refuse an oversized request head before anything parses it.

``nkr serve`` runs uvicorn with one of these instead of uvicorn's own classes. Why: httptools
(llhttp) sets no limit on header size, and it gathers a header value split over many reads by
concatenating bytes, at a cost that grows with the square of its length; an ASGI middleware
sees the headers only once all of them are buffered. Measured before: a 50 MB header was read
whole and answered 200 after 7-15 s, holding up every other request on the worker for seconds.
These classes count the bytes of a request's head (request line and headers) as they arrive
and, past ``NKR_MAX_HEADER_BYTES``, answer 431 with a FHIR OperationOutcome without reading
further into the parser or starting the application. h11 has a buffer limit of its own
(``h11_max_incomplete_event_size``, which ``nkr serve`` sets to the same value); its subclass
here gives the same 431 answer in place of uvicorn's plain-text 400.

After the 431 the connection is half-closed and whatever the client still sends is read and
dropped for at most :data:`LINGER_SECONDS` before the connection is closed: a client still
sending its head (as every client is, at the moment it is refused) can then read the answer
instead of seeing a connection reset.
"""

from __future__ import annotations

import asyncio
import re
from functools import cache
from typing import Final

import h11
import httptools
import orjson
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from nkr.fhir._outcome import FHIR_JSON, operation_outcome

# How long a refused connection's remaining input is read and dropped before it is closed.
LINGER_SECONDS: Final = 1.0
# The blank line that ends a request head (h11 accepts bare LF line ends too).
_HEAD_END: Final = re.compile(rb"\r?\n\r?\n")
# Bytes a header line adds to its name and value: ": " and CRLF.
_LINE_OVERHEAD: Final = 4

# ``nkr serve --http NAME``: uvicorn's ``http`` argument (an import path) for each name.
PROTOCOLS: Final = {
    "httptools": "nkr._http:LimitedHttpToolsProtocol",
    "h11": "nkr._http:LimitedH11Protocol",
}


@cache
def max_header_bytes() -> int:
    """``NKR_MAX_HEADER_BYTES``, read once per worker process (the protocol classes are built
    by uvicorn, which passes them no settings)."""
    from nkr._settings import Settings

    return Settings.from_env().max_header_bytes


def answer_431(limit: int) -> bytes:
    """The whole 431 response, as bytes to write on the transport."""
    body = orjson.dumps(
        operation_outcome(
            "too-costly",
            f"the request line and headers are larger than {limit} bytes",
        )
    )
    return (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\n"
        b"content-type: " + FHIR_JSON.encode() + b"\r\n"
        b"content-length: " + str(len(body)).encode() + b"\r\n"
        b"cache-control: no-store\r\n"
        b"connection: close\r\n\r\n" + body
    )


def _refuse(transport: asyncio.Transport, loop: asyncio.AbstractEventLoop, limit: int) -> None:
    """Answer 431, stop writing, and close after the linger time."""
    if transport.is_closing():
        return
    transport.write(answer_431(limit))
    if transport.can_write_eof():
        transport.write_eof()
        loop.call_later(LINGER_SECONDS, transport.close)
    else:
        transport.close()


class _HeadTooLarge(Exception):
    """Raised inside an httptools callback to stop the parser."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a limit on the size of a request head.

    Two counts, both lower bounds of the head's true size (so neither refuses a head within
    the limit): what the parser has reported (URL pieces, complete headers), and the length of
    every read that fell entirely inside one head (the message began before it and its headers
    were still incomplete after it). The second catches a single huge header, which httptools
    reports only once it is complete; the parser holds at most the limit plus two reads."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._max_head = max_header_bytes()
        self._message = 0  # messages begun on this connection
        self._in_head = False
        self._reported = 0
        self._whole_reads = 0
        self._refused = False

    def _over(self) -> bool:
        return max(self._reported, self._whole_reads) > self._max_head

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._message += 1
        self._in_head = True
        self._reported = self._whole_reads = 0

    def on_url(self, url: bytes) -> None:
        self._reported += len(url)
        if self._over():
            raise _HeadTooLarge
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._reported += len(name) + len(value) + _LINE_OVERHEAD
        if self._over():
            raise _HeadTooLarge
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self._in_head = False
        super().on_headers_complete()

    def data_received(self, data: bytes) -> None:
        # uvicorn's own, but telling a head over the limit (431) from a malformed one (400).
        if self._refused:
            return  # the rest of a refused head: dropped while the 431 lingers
        message, in_head = self._message, self._in_head
        self._unset_keepalive_if_required()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError:
            # An exception raised in a callback (ours) arrives as HttpParserCallbackError.
            if self._over():
                self._refuse()
            else:
                msg = "Invalid HTTP request received."
                self.logger.warning(msg)
                self.send_400_response(msg)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if in_head and self._in_head and message == self._message:
            self._whole_reads += len(data)
            if self._over():
                self._refuse()

    def _refuse(self) -> None:
        if self._refused:
            return
        self._refused = True
        self._unset_keepalive_if_required()
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            # A pipelined request's answer is still being written: no room for a 431.
            self.transport.close()
            return
        _refuse(self.transport, self.loop, self._max_head)


class LimitedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol answering an oversized head with the same 431 as
    :class:`LimitedHttpToolsProtocol` (h11 would stop at its own limit, with a bare 400)."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._max_head = max_header_bytes()
        self._refused = False

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        if self.conn.their_state is h11.IDLE:
            # Before a complete request head, h11 holds it all in its buffer: refuse the read
            # that would take it over the limit, unless the head ends within the limit (the
            # rest is then body, or the next request).
            buffered = self.conn.trailing_data[0] + data
            if len(buffered) > self._max_head and not _HEAD_END.search(
                buffered, 0, self._max_head + 4
            ):
                self._refused = True
                self._unset_keepalive_if_required()
                _refuse(self.transport, self.loop, self._max_head)
                return
        super().data_received(data)
