"""DRM licenses: what a license request may ask, and what the license may allow.

The license proxy (``playback.service.license``) checks the playback grant first, then the
challenge with the functions here, then either answers itself (W3C ClearKey) or forwards the
challenge to the vendor's license server (``drm.vendors``) together with the entitlement
computed here: how long the license lasts (the rental and the grant) and, per rung, the
security level and output protection the device must have (the rung policy).

Pure functions over plain values: no database, no network.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import struct
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any
from xml.etree import ElementTree

from defusedxml import ElementTree as SafeElementTree

from core.errors import AppError, Conflict, Forbidden, InvalidInput


class LicenseSystem(StrEnum):
    widevine = "widevine"
    playready = "playready"
    fairplay = "fairplay"
    clearkey = "clearkey"


class ChallengeTooLarge(AppError):
    status = 413
    code = "challenge_too_large"
    title = "Challenge too large"


class InvalidChallenge(InvalidInput):
    status = 400
    code = "invalid_challenge"


class ChallengeReplayed(Conflict):
    code = "challenge_replayed"


class KeyNotGranted(Forbidden):
    code = "key_not_granted"


# --- the rung policy ----------------------------------------------------------------------


class Security(StrEnum):
    hardware = "hardware"  # Widevine L1 (HW_SECURE_ALL), PlayReady SL3000, FairPlay
    software = "software"  # Widevine L3 (SW_SECURE_CRYPTO), PlayReady SL2000


class Hdcp(StrEnum):
    none = "none"
    v1 = "1.4"
    v2 = "2.2"


@dataclass(frozen=True)
class RungPolicy:
    height: int
    security: Security
    hdcp: Hdcp


def rung_policy(height: int, *, hardware_min_height: int, hdcp_min_height: int) -> RungPolicy:
    """What a device must have to be given a rung of this height: the tall rungs only with
    hardware-backed security and HDCP 2.2 (the studios' rule for early-window releases),
    the middle ones with HDCP 1.4, the small ones in software with no output protection."""
    if height >= hardware_min_height:
        return RungPolicy(height, Security.hardware, Hdcp.v2)
    if height >= hdcp_min_height:
        return RungPolicy(height, Security.software, Hdcp.v1)
    return RungPolicy(height, Security.software, Hdcp.none)


_RUNG_FOLDER = re.compile(r"^video_(\d{2,5})p$")


def rung_heights(renditions: Sequence[str]) -> list[int]:
    """Heights of the video rungs among a grant's rendition folders (``video_1080p``)."""
    heights = {int(m[1]) for r in renditions if (m := _RUNG_FOLDER.match(r))}
    return sorted(heights, reverse=True)


@dataclass(frozen=True)
class Entitlement:
    """What the vendor's license server is told the license may allow."""

    session_id: str
    release_id: str
    key_ids: tuple[str, ...]  # hex, the key periods the grant opens
    license_seconds: int
    rungs: tuple[RungPolicy, ...]


def license_seconds(*, now: int, watch_until: int | None, max_seconds: int) -> int:
    """How long a license issued now may last: until the rental runs out (when its clock
    has started; a session's start starts it), and never more than ``max_seconds``.
    0 once the rental is over."""
    if watch_until is None:
        return max_seconds
    return max(0, min(max_seconds, watch_until - now))


# --- challenges -----------------------------------------------------------------------------


def check_size(body: bytes, max_bytes: int) -> None:
    if not body:
        raise InvalidChallenge("the license request has no challenge")
    if len(body) > max_bytes:
        raise ChallengeTooLarge(f"a license challenge is at most {max_bytes} bytes")


def challenge_digest(body: bytes) -> str:
    """What the replay guard remembers of a challenge (never the challenge itself)."""
    return hashlib.sha256(body).hexdigest()


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def clearkey_key_ids(body: bytes) -> list[str]:
    """The key ids (lower-case hex) a W3C ClearKey license request asks for:
    ``{"kids": ["<base64url 16 bytes>", ...], "type": "temporary"}``."""
    try:
        request: Any = json.loads(body)
        kids = request["kids"]
        if not isinstance(kids, list) or not 1 <= len(kids) <= 64:
            raise ValueError("kids")
        if request.get("type", "temporary") not in ("temporary", "persistent-license"):
            raise ValueError("type")
        found = []
        for kid in kids:
            if not isinstance(kid, str) or len(kid) > 64:
                raise ValueError("kid")
            raw = _unb64url(kid)
            if len(raw) != 16:
                raise ValueError("kid length")
            found.append(raw.hex())
    except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
        raise InvalidChallenge(
            'not a ClearKey license request: {"kids": [base64url key ids], "type": "temporary"}'
        ) from None
    return found


def clearkey_license(keys: Sequence[tuple[str, bytes]], session_type: str = "temporary") -> bytes:
    """The W3C ClearKey license (a JSON Web Key Set) for ``(key id hex, key)`` pairs."""
    body = {
        "keys": [
            {"kty": "oct", "kid": b64url(bytes.fromhex(kid)), "k": b64url(key)} for kid, key in keys
        ],
        "type": session_type,
    }
    return json.dumps(body, separators=(",", ":")).encode()


def check_widevine_challenge(body: bytes) -> None:
    """A Widevine challenge is a protobuf ``SignedMessage`` whose first field is the
    message type (tag 1, varint: byte 0x08); anything else is not a challenge."""
    if body[:1] != b"\x08" or len(body) < 16:
        raise InvalidChallenge("not a Widevine license challenge")


_SOAP = "{http://schemas.xmlsoap.org/soap/envelope/}"


def check_playready_challenge(body: bytes) -> None:
    """A PlayReady challenge is a SOAP envelope with an ``AcquireLicense`` body. Parsed with
    no DTD, no entities, no external references (defusedxml)."""
    try:
        root = SafeElementTree.fromstring(body, forbid_dtd=True)
    except (ElementTree.ParseError, ValueError):
        raise InvalidChallenge("not a PlayReady license challenge (SOAP XML)") from None
    soap_body = root.find(f"{_SOAP}Body")
    if root.tag != f"{_SOAP}Envelope" or soap_body is None:
        raise InvalidChallenge("not a PlayReady license challenge (no SOAP envelope)")
    if not any(child.tag.endswith("}AcquireLicense") for child in soap_body):
        raise InvalidChallenge("not a PlayReady license challenge (no AcquireLicense)")


# FairPlay SPC: version (4), reserved (4), SPC data IV (16), wrapped AES key (128),
# certificate hash (20), payload length (4), then the encrypted payload.
_SPC_HEADER = 4 + 4 + 16 + 128 + 20 + 4


def check_fairplay_spc(body: bytes) -> None:
    if len(body) <= _SPC_HEADER:
        raise InvalidChallenge("not a FairPlay SPC (too short)")
    version = struct.unpack(">I", body[:4])[0]
    (payload_length,) = struct.unpack(">I", body[_SPC_HEADER - 4 : _SPC_HEADER])
    if version not in (1, 2) or payload_length != len(body) - _SPC_HEADER:
        raise InvalidChallenge("not a FairPlay SPC (version or payload length)")


CHALLENGE_CHECKS = {
    LicenseSystem.widevine: check_widevine_challenge,
    LicenseSystem.playready: check_playready_challenge,
    LicenseSystem.fairplay: check_fairplay_spc,
}
