"""The server's protocol (api/http_server.py): a response's head and body leave in one write,
and nothing written is lost, reordered or held back."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from api.app import create_app
from api.http_server import PASS_THROUGH_BYTES, OneWriteHttpProtocol, OneWritePerTurn
from tests.helpers import served_on_loopback


class Socketish:
    """A transport that records what reaches the socket."""

    def __init__(self) -> None:
        self.sent: list[list[bytes]] = []  # one entry per write or writelines call
        self.closed = False
        self.aborted = False

    def write(self, data: bytes) -> None:
        assert not self.closed
        self.sent.append([bytes(data)])

    def writelines(self, chunks: list[bytes]) -> None:
        assert not self.closed
        self.sent.append([bytes(c) for c in chunks])

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def abort(self) -> None:
        self.aborted = self.closed = True

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5000)}.get(name, default)


def _turns(*steps: Any) -> Socketish:
    """Run each step in a turn of its own on a real event loop; what the socket saw."""
    raw = Socketish()

    async def run() -> None:
        corked = OneWritePerTurn(raw, asyncio.get_running_loop())  # type: ignore[arg-type]
        for step in steps:
            step(corked, raw)
            await asyncio.sleep(0)  # the end of this turn
            await asyncio.sleep(0)

    asyncio.run(run())
    return raw


def test_the_writes_of_one_turn_leave_together_after_it_in_order() -> None:
    seen_during_turn: list[int] = []

    def head_and_body(t: OneWritePerTurn, raw: Socketish) -> None:
        t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n")
        t.write(b"hello")
        seen_during_turn.append(len(raw.sent))

    raw = _turns(head_and_body, lambda t, raw: t.write(b"next turn"))
    assert seen_during_turn == [0]  # held until the end of the turn
    assert raw.sent == [[b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n", b"hello"], [b"next turn"]]


def test_a_large_body_is_not_held_and_a_reused_buffer_is_not_corrupted() -> None:
    big = b"x" * PASS_THROUGH_BYTES
    reused = bytearray(b"first")

    def step(t: OneWritePerTurn, raw: Socketish) -> None:
        t.write(b"head")
        t.write(big)
        assert raw.sent == [[b"head", big]]  # at once, not at the end of the turn
        t.write(reused)
        reused[:] = b"SECOND"

    raw = _turns(step)
    assert raw.sent == [[b"head", big], [b"first"]]


def test_closing_sends_what_is_held_first_and_aborting_drops_it() -> None:
    def close(t: OneWritePerTurn, raw: Socketish) -> None:
        t.write(b"HTTP/1.1 413 Payload Too Large\r\n\r\n")
        t.write(b"{}")
        t.close()

    closed = _turns(close)
    assert closed.sent == [[b"HTTP/1.1 413 Payload Too Large\r\n\r\n", b"{}"]]
    assert closed.closed

    def abort(t: OneWritePerTurn, raw: Socketish) -> None:
        t.write(b"half a response")
        t.abort()

    aborted = _turns(abort)
    assert aborted.sent == []
    assert aborted.aborted


# --- through a real server and a real socket ---------------------------------------------------


class Counted:
    """A real socket's transport, with every write that reaches it recorded."""

    def __init__(self, transport: asyncio.Transport, writes: list[bytes]) -> None:
        self._transport, self._writes = transport, writes

    def write(self, data: bytes) -> None:
        self._writes.append(bytes(data))
        self._transport.write(data)

    def writelines(self, chunks: Any) -> None:
        chunks = list(chunks)
        self._writes.append(b"".join(chunks))
        self._transport.writelines(chunks)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


WRITES: list[bytes] = []


class Recording(OneWriteHttpProtocol):
    """The production protocol, on a socket whose writes are counted."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Counted(transport, WRITES))  # type: ignore[arg-type]


async def streamed(scope: Any, receive: Any, send: Any) -> None:
    """Three body chunks with a pause between them (a streamed download)."""
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": []})
    for n in range(3):
        await send({"type": "http.response.body", "body": b"chunk%d;" % n, "more_body": True})
        await asyncio.sleep(0.05)
    await send({"type": "http.response.body", "body": b"end"})


def _serve(app: Any) -> Iterator[int]:
    with served_on_loopback(app, http=Recording) as port:
        yield port


@pytest.fixture
def api_port(db: None) -> Iterator[int]:
    yield from _serve(create_app())


def _read_response(sock: socket.socket) -> bytes:
    answer = b""
    while b"\r\n\r\n" not in answer:
        answer += sock.recv(65536)
    head, _, body = answer.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return head + b"\r\n\r\n" + body


def test_each_answer_of_a_keep_alive_connection_is_one_write(api_port: int) -> None:
    WRITES.clear()
    with socket.create_connection(("127.0.0.1", api_port), timeout=10) as sock:
        answers = []
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            answers.append(_read_response(sock))
    assert all(a.startswith(b"HTTP/1.1 200") for a in answers)
    assert len(WRITES) == 3  # head and body together, once per request
    assert answers == WRITES


def test_a_streamed_body_arrives_whole_and_in_order() -> None:
    WRITES.clear()
    for port in _serve(streamed):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
    body = answer.partition(b"\r\n\r\n")[2]
    # chunked transfer encoding: the chunks, in order, then the terminator
    assert body == b"7\r\nchunk0;\r\n7\r\nchunk1;\r\n7\r\nchunk2;\r\n3\r\nend\r\n0\r\n\r\n"
    # Each turn's writes together: the head with the first chunk, then chunk by chunk.
    assert len(WRITES) == 4


def test_a_client_that_half_closes_after_its_request_gets_its_answer(api_port: int) -> None:
    """`printf 'GET …' | nc -N`: the request, then the end of the client's side. The socket
    closes itself once the end is read; the answer held for the turn must leave before."""
    for _ in range(5):
        with socket.create_connection(("127.0.0.1", api_port), timeout=10) as sock:
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.shutdown(socket.SHUT_WR)
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        assert answer.startswith(b"HTTP/1.1 200"), answer
        assert answer.endswith(b"}")  # the whole body
