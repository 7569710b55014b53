"""The HTTP server's protocol: uvicorn's httptools protocol, with each response's head and
body leaving in one write.

uvicorn writes every ASGI message as it comes: the status line and headers, then the body,
two ``send`` calls and, for a small answer (a 16-byte key, a grant, a problem), two TCP
segments. The client wakes up for the head, finds no body, sleeps, and wakes up again. On
the playback benchmark's loopback that second wake-up was charged to the server's core: the
key route cost 60 µs of server CPU per request, 43.5 µs with one write (docs/playback.md),
and an app that only spins 30 µs behind the bare endpoint cost the same 60 µs. On a real
network it is one packet instead of two per small answer.

What is written in one turn of the event loop leaves as one write (``writelines``: one
``writev`` on uvloop, no copy) at the end of that turn. Nothing waits for a later turn: an
ASGI app sends its head and a small body in the same turn, and a streamed body still leaves
chunk by chunk, each turn's writes together. Past 64 KiB held, the writes go at once, so a
large body is never held back in memory. Closing the connection, or the client closing its
side of it, sends what is held first.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from core.settings import get_settings

PASS_THROUGH_BYTES = 64 * 1024


class OneWritePerTurn:
    """A connection's transport whose writes of one loop turn go out together."""

    __slots__ = ("_held", "_loop", "_size", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: list[bytes] | None = None
        self._size = 0

    def write(self, data: bytes | bytearray | memoryview) -> None:
        # A caller may reuse a bytearray once write returns: hold an immutable copy.
        chunk = data if isinstance(data, bytes) else bytes(data)
        if self._held is None:
            self._held = [chunk]
            self._size = len(chunk)
            self._loop.call_soon(self.flush)
        else:
            self._held.append(chunk)
            self._size += len(chunk)
        if self._size >= PASS_THROUGH_BYTES:
            self.flush()

    def writelines(self, chunks: Any) -> None:
        for chunk in chunks:
            self.write(chunk)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held and not self._transport.is_closing():
            if len(held) == 1:
                self._transport.write(held[0])
            else:
                self._transport.writelines(held)

    def close(self) -> None:
        self.flush()  # a response written just before the connection closes still leaves
        self._transport.close()

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def get_write_buffer_size(self) -> int:
        return self._transport.get_write_buffer_size() + (self._size if self._held else 0)

    def __getattr__(self, name: str) -> Any:
        # Everything else (extra info, reading flow control, closing state) is the socket's.
        return getattr(self._transport, name)


class OneWriteHttpProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol on a :class:`OneWritePerTurn` transport.

    It leans on what ``HttpToolsProtocol`` does with its transport (uvicorn 0.30 to 0.55);
    ``tests/api/test_http_server.py`` checks it on a real socket, pipelining and half-closing
    clients included."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(OneWritePerTurn(transport, self.loop))  # type: ignore[arg-type]

    def eof_received(self) -> None:
        # A client that half-closes after its request: the socket closes itself as soon as
        # this returns, before the turn's end, so what is held for it leaves now.
        cast(OneWritePerTurn, self.transport).flush()
        super().eof_received()


def server_config(app: Any, host: str, port: int, http: Any = None) -> uvicorn.Config:
    """How the API is served: by ``pocketcinema api``/``serve``, and by every test that
    talks to it over a real socket (``http`` replaces the protocol, for tests that count
    what it writes)."""
    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        # Client addresses are core.geo's business (trusted proxies only), not uvicorn's.
        proxy_headers=False,
        http=http or OneWriteHttpProtocol,
        # The header block the server buffers is bounded before the app sees it (with the
        # h11 parser; with httptools api/limits.py refuses the same requests with a 431).
        h11_max_incomplete_event_size=get_settings().max_header_bytes + 1024,
    )
