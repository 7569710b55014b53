"""Key exchange for external packagers, encoders and DRM vendors (docs/drm.md): a SPEKE
v2-compatible key endpoint and a release's keys as a CPIX 2.3 document.

Both want ``Authorization: Bearer <key_exchange_token>``; with no token configured the
exchange is off (404). Documents are XML; bad ones are 400 ``invalid_cpix``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Path, Request
from fastapi.responses import Response

from api.contract import KEY_EXCHANGE_TOKEN, problems
from api.deps import DbSession, ReadDb
from api.problems import PROBLEM_JSON, Problem
from core.errors import NotAuthenticated, NotFound
from core.metrics import bearer_ok
from core.settings import get_settings
from drm import cpix, exchange

router = APIRouter(prefix="/v1/drm", tags=["drm key exchange"])

CPIX_TYPE = "application/xml"
XML_CONTENT: dict[str, Any] = {CPIX_TYPE: {"schema": {"type": "string"}}}
BAD_CPIX: dict[int | str, dict[str, Any]] = {
    400: {"model": Problem, "content": {PROBLEM_JSON: {}}, "description": "Not a CPIX document"}
}


def require_key_exchange(
    authorization: Annotated[str | None, Header(max_length=1024)] = None,
) -> None:
    token = get_settings().key_exchange_token.get_secret_value()
    if not token:
        raise NotFound("the key exchange is off on this server", code="key_exchange_off")
    if not bearer_ok(authorization, token):
        raise NotAuthenticated(
            "send the key exchange credential: Authorization: Bearer <token>",
            code="invalid_credentials",
        )


async def _document(request: Request) -> bytes:
    # JSON-route body cap (api/limits.py) applies while it arrives; CPIX has its own below.
    return await request.body()


KeyExchangeCaller = Annotated[None, Depends(require_key_exchange)]
CpixBody = Annotated[bytes, Depends(_document)]
SPEKE_HEADERS = {"X-Speke-Version": exchange.SPEKE_VERSION, "Speke-User-Agent": "pocketcinema"}


@router.post(
    "/speke/v2",
    summary="SPEKE v2: a CPIX request in, the keys and DRM signalling out",
    response_class=Response,
    responses={
        **problems(
            "invalid_cpix",
            "invalid_credentials",
            "key_exchange_off",
            (404, "key_not_found"),
            "release_not_found",
            "key_id_taken",
        ),
        **{200: {"content": XML_CONTENT}},
    },
    openapi_extra={
        **{"requestBody": {"required": True, "content": XML_CONTENT}},
        "security": KEY_EXCHANGE_TOKEN,
    },
)
def speke(_: KeyExchangeCaller, session: DbSession, body: CpixBody) -> Response:
    """A packager asks for content keys in a CPIX document (SPEKE v2) and gets them for the release's key periods."""
    answer = exchange.answer_speke(session, cpix.read(body))
    return Response(cpix.write(answer), media_type=CPIX_TYPE, headers=SPEKE_HEADERS)


@router.get(
    "/releases/{release_id}/cpix",
    summary="A packaged release's content keys, key periods and DRM signalling (CPIX 2.3)",
    response_class=Response,
    responses={
        **problems(
            "invalid_cpix",
            "invalid_credentials",
            "key_exchange_off",
            (404, "key_not_found"),
            "release_not_found",
        ),
        **{200: {"content": XML_CONTENT}},
    },
    openapi_extra={"security": KEY_EXCHANGE_TOKEN},
)
def release_cpix(
    _: KeyExchangeCaller,
    session: ReadDb,
    release_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
) -> Response:
    """The release's content keys as a CPIX document, for an outside packager."""
    document = exchange.release_document(session, release_id)
    return Response(
        cpix.write(document), media_type=CPIX_TYPE, headers={"Cache-Control": "no-store"}
    )
