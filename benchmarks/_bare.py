"""A bare ASGI endpoint returning a static body: the ceiling the playback routes are
compared with in benchmarks/playback.py (same server, same client, same run)."""

from __future__ import annotations

from typing import Any


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/octet-stream")],
        }
    )
    await send({"type": "http.response.body", "body": b"0123456789abcdef"})
