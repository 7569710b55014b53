"""The player page: a minimal web client that signs in, lists my tickets and plays one.

hls.js (and Shaka Player, for DRM-protected releases) come from the npm packages that ``./run player-setup`` (scripts/setup_player.sh)
installed into ``player_vendor_dir``; the API serves that file itself, so the page never
loads code from a CDN at run time.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse

from api.contract import PUBLIC, problems
from core.errors import NotFound
from core.settings import get_settings

router = APIRouter(tags=["player"])

_HERE = Path(__file__).resolve().parent.parent / "player"
HLSJS = Path("node_modules") / "hls.js" / "dist" / "hls.min.js"
SHAKA = Path("node_modules") / "shaka-player" / "dist" / "shaka-player.compiled.js"
_NO_CACHE = {"Cache-Control": "no-cache"}


def hlsjs_path() -> Path:
    return (get_settings().player_vendor_dir / HLSJS).resolve()


def shaka_path() -> Path:
    return (get_settings().player_vendor_dir / SHAKA).resolve()


@router.get(
    "/play",
    summary="The web player (sign in, my tickets, play)",
    response_class=FileResponse,
    responses={200: {"content": {"text/html": {}}, "description": "The page"}},
    openapi_extra={"security": PUBLIC},
)
def player_page() -> FileResponse:
    """An HTML page that signs in, lists my tickets and plays one with hls.js."""
    return FileResponse(_HERE / "index.html", media_type="text/html", headers=_NO_CACHE)


@router.get(
    "/play/player.js",
    summary="The web player's script",
    response_class=FileResponse,
    responses={200: {"content": {"text/javascript": {}}, "description": "The script"}},
    openapi_extra={"security": PUBLIC},
)
def player_script() -> FileResponse:
    """The player page's script."""
    return FileResponse(_HERE / "player.js", media_type="text/javascript", headers=_NO_CACHE)


@router.get(
    "/play/hls.min.js",
    summary="hls.js, as installed from npm",
    response_class=FileResponse,
    responses={
        **problems("player_assets_missing"),
        200: {"content": {"text/javascript": {}}, "description": "The script"},
    },
    openapi_extra={"security": PUBLIC},
)
def hls_script() -> FileResponse:
    """hls.js as installed by `./run player-setup`, served by this process (no CDN)."""
    path = hlsjs_path()
    if not path.is_file():
        raise NotFound(
            "hls.js is not installed: run ./run player-setup", code="player_assets_missing"
        )
    return FileResponse(path, media_type="text/javascript", headers=_NO_CACHE)


@router.get(
    "/play/shaka-player.compiled.js",
    summary="Shaka Player (DASH and HLS with EME), as installed from npm",
    response_class=FileResponse,
    responses={
        **problems("player_assets_missing"),
        200: {"content": {"text/javascript": {}}, "description": "The script"},
    },
    openapi_extra={"security": PUBLIC},
)
def shaka_script() -> FileResponse:
    """Shaka Player as installed by `./run player-setup`, served by this process (no CDN)."""
    path = shaka_path()
    if not path.is_file():
        raise NotFound(
            "Shaka Player is not installed: run ./run player-setup", code="player_assets_missing"
        )
    return FileResponse(path, media_type="text/javascript", headers=_NO_CACHE)
