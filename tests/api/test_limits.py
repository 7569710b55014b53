"""Limits before work: oversized bodies, deep JSON and header floods are refused with
problem+json before anything parses them; the body is not even read past the cap."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from tests.helpers import asgi_request, served_on_loopback

MiB = 1024 * 1024


class Upload:
    """An ASGI receive that streams ``total`` bytes in 64 KiB chunks and counts what was read."""

    def __init__(self, total: int, chunk: int = 64 * 1024) -> None:
        self.left = total
        self.chunk = chunk
        self.read = 0

    async def __call__(self) -> dict[str, Any]:
        if self.left <= 0:
            await asyncio.sleep(3600)  # a client that has sent everything waits
        size = min(self.chunk, self.left)
        self.left -= size
        self.read += size
        return {"type": "http.request", "body": b"[" * size, "more_body": self.left > 0}


def call(
    method: str, path: str, headers: list[tuple[bytes, bytes]], receive: Upload
) -> tuple[int, dict[bytes, bytes], dict[str, Any]]:
    """One request straight into the ASGI app, as a server would make it."""
    sent = asgi_request(create_app(), method, path, [(b"host", b"testserver"), *headers], receive)
    start = sent[0]
    body = b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], dict(start["headers"]), json.loads(body)


def test_a_declared_50_mb_json_body_is_refused_before_one_byte_is_read(db: None) -> None:
    upload = Upload(50 * MiB)
    status, headers, problem = call(
        "POST",
        "/v1/auth/login",
        [(b"content-type", b"application/json"), (b"content-length", str(50 * MiB).encode())],
        upload,
    )
    assert status == 413
    assert headers[b"content-type"] == b"application/problem+json"
    assert problem["code"] == "payload_too_large"
    assert upload.read == 0


def test_a_chunked_body_is_cut_off_as_soon_as_it_passes_the_cap(db: None) -> None:
    upload = Upload(50 * MiB)
    status, _, problem = call(
        "POST", "/v1/auth/signup", [(b"content-type", b"application/json")], upload
    )
    assert status == 413
    assert problem["code"] == "payload_too_large"
    assert MiB < upload.read <= MiB + upload.chunk  # the default JSON cap, and not a chunk more


def test_the_stripe_webhook_stops_reading_at_its_cap(db: None) -> None:
    upload = Upload(5 * MiB)
    status, _, problem = call(
        "POST", "/v1/webhooks/stripe", [(b"stripe-signature", b"t=1,v1=00")], upload
    )
    assert status == 413
    assert problem["code"] == "payload_too_large"
    assert upload.read <= 512 * 1024 + upload.chunk


def test_an_upload_part_larger_than_the_part_size_is_refused_up_front(db: None) -> None:
    upload = Upload(200 * MiB)
    status, _, problem = call(
        "PUT",
        "/v1/studio/uploads/abc/parts/1",
        [(b"content-length", str(200 * MiB).encode())],
        upload,
    )
    assert (status, problem["code"], upload.read) == (413, "payload_too_large", 0)


def test_deep_json_is_refused_before_the_parser_sees_it(client: TestClient) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    response = client.post(
        "/v1/auth/login", content=deep, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == "json_too_deep"
    # Brackets inside strings are text, not depth.
    shallow = json.dumps({"email": "[" * 1000, "password": "{" * 100})
    answer = client.post(
        "/v1/auth/login", content=shallow, headers={"content-type": "application/json"}
    )
    assert answer.json()["code"] != "json_too_deep"


def test_a_json_body_that_is_an_array_where_an_object_belongs_is_a_422(client: TestClient) -> None:
    response = client.post("/v1/auth/login", json=[1, 2, 3])
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_input"


def test_header_floods_are_refused(client: TestClient) -> None:
    many = {f"x-h-{i}": "1" for i in range(5000)}
    assert client.get("/healthz", headers=many).status_code == 431
    big = client.get("/healthz", headers={"x-big": "a" * 100_000})
    assert big.status_code == 431
    assert big.json()["code"] == "headers_too_large"
    assert client.get("/healthz").status_code == 200


# --- the same through a real server ----------------------------------------------------------


@pytest.fixture
def server(db: None) -> Iterator[int]:
    with served_on_loopback(create_app()) as port:
        yield port


def raw_request(port: int, head: bytes, body: bytes = b"") -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(head + body)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
            if b"\r\n\r\n" in answer and answer.rstrip().endswith(b"}"):
                break
        return answer


def test_a_real_server_answers_a_huge_declared_body_without_waiting_for_it(server: int) -> None:
    # 50 MB announced, none sent: the answer comes at once (nobody waits for the body).
    head = (
        b"POST /v1/auth/login HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 52428800\r\n\r\n"
    )
    answer = raw_request(server, head)
    assert answer.startswith(b"HTTP/1.1 413")
    assert b'"code":"payload_too_large"' in answer.replace(b" ", b"")


def test_a_real_server_refuses_a_100_kb_header(server: int) -> None:
    head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100_000 + b"\r\n\r\n"
    answer = raw_request(server, head)
    assert answer.startswith(b"HTTP/1.1 431")
