"""Vendor license servers: each speaks its vendor's documented request and response.

* Widevine (the license proxy integration of Widevine's cloud license service): a JSON
  ``{"request": base64(message), "signature": base64(AES-CBC(SHA-1(message))), "signer"}``
  where ``message`` carries the base64 challenge (``payload``), the content id, the
  ``content_key_specs`` (security level and output protection per resolution) and the
  ``policy_overrides`` (license duration). Answer: ``{"status": "OK", "license": base64}``.
* PlayReady: the SOAP ``AcquireLicense`` challenge is posted as is (``text/xml``, the
  SOAPAction header); the entitlement travels as a signed JWT in ``Authorization: Bearer``
  (the entitlement-message pattern of PlayReady license services). Answer: the SOAP
  ``AcquireLicenseResponse``, returned to the player unchanged.
* FairPlay: ``{"spc": base64, "asset_id", ...entitlement}`` with the same kind of signed
  JWT; answer ``{"ckc": base64}``; the player receives the raw CKC.

The URLs are the operator's configuration (settings), not user input, so they are called
directly rather than through ``core.outbound``. Timeouts, no redirects, a size cap.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from jose import jwt

from core.errors import AppError, Forbidden, NotFound, ServiceUnavailable
from core.settings import Settings
from drm.license import Entitlement, Hdcp, LicenseSystem, RungPolicy, Security

MAX_LICENSE_BYTES = 1024 * 1024
PLAYREADY_SOAP_ACTION = "http://schemas.microsoft.com/DRM/2007/03/protocols/AcquireLicense"
ENTITLEMENT_AUDIENCE = "drm-license-server"


class LicenseSystemOff(NotFound):
    code = "license_system_off"


class LicenseRefused(Forbidden):
    code = "license_refused"


class LicenseServerUnavailable(ServiceUnavailable):
    code = "license_server_unavailable"


@dataclass(frozen=True)
class VendorAnswer:
    body: bytes
    media_type: str


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


# --- Widevine -------------------------------------------------------------------------------

# Widevine security levels (content_key_specs.security_level): 1 SW_SECURE_CRYPTO ...
# 5 HW_SECURE_ALL. HDCP names as Widevine spells them.
WIDEVINE_LEVEL = {Security.software: 1, Security.hardware: 5}
WIDEVINE_HDCP = {Hdcp.none: "HDCP_NONE", Hdcp.v1: "HDCP_V1", Hdcp.v2: "HDCP_V2_2"}


def _pixels_bounds(rungs: tuple[RungPolicy, ...]) -> list[tuple[RungPolicy, int, int]]:
    """(policy, min pixels, max pixels) per rung, 16:9 pixels counted from the height, each
    band reaching up to the next taller rung."""
    ordered = sorted(rungs, key=lambda r: r.height)
    bands = []
    low = 0
    for rung in ordered:
        high = rung.height * rung.height * 16 // 9
        bands.append((rung, low, high))
        low = high + 1
    return bands


def widevine_message(challenge: bytes, entitlement: Entitlement, provider: str) -> dict[str, Any]:
    strictest = max(
        (WIDEVINE_LEVEL[r.security] for r in entitlement.rungs),
        default=WIDEVINE_LEVEL[Security.software],
    )
    return {
        "payload": _b64(challenge),
        "provider": provider,
        "content_id": _b64(entitlement.release_id.encode()),
        "content_key_specs": [
            {
                "key_id": _b64(bytes.fromhex(kid)),
                "track_type": "VIDEO",
                "security_level": strictest,
                "video_resolution_constraints": [
                    {
                        "min_resolution_pixels": low,
                        "max_resolution_pixels": high,
                        "required_output_protection": {"hdcp": WIDEVINE_HDCP[rung.hdcp]},
                        "security_level": WIDEVINE_LEVEL[rung.security],
                    }
                    for rung, low, high in _pixels_bounds(entitlement.rungs)
                ],
            }
            for kid in entitlement.key_ids
        ],
        "policy_overrides": {
            "can_play": True,
            "can_persist": False,
            "license_duration_seconds": entitlement.license_seconds,
            "rental_duration_seconds": entitlement.license_seconds,
            "playback_duration_seconds": entitlement.license_seconds,
        },
        "session_init": {"session_id": entitlement.session_id},
    }


def widevine_signature(message: bytes, key: bytes, iv: bytes) -> bytes:
    """Widevine's request signature: AES-256-CBC (provider key and IV) of SHA-1(message),
    PKCS#7 padded."""
    padder = padding.PKCS7(128).padder()
    padded = padder.update(hashlib.sha1(message).digest()) + padder.finalize()  # noqa: S324 - Widevine's documented signature
    encryptor = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return encryptor.update(padded) + encryptor.finalize()


def widevine_request(challenge: bytes, entitlement: Entitlement, settings: Settings) -> bytes:
    try:
        key = bytes.fromhex(settings.drm_widevine_signing_key.get_secret_value())
        iv = bytes.fromhex(settings.drm_widevine_signing_iv.get_secret_value())
    except ValueError:
        key = iv = b""
    if len(key) != 32 or len(iv) != 16 or not settings.drm_widevine_provider:
        raise LicenseSystemOff("widevine is not configured (provider, signing key and IV)")
    message = json.dumps(
        widevine_message(challenge, entitlement, settings.drm_widevine_provider)
    ).encode()
    return json.dumps(
        {
            "request": _b64(message),
            "signature": _b64(widevine_signature(message, key, iv)),
            "signer": settings.drm_widevine_provider,
        }
    ).encode()


def widevine_license(answer: bytes) -> bytes:
    try:
        body = json.loads(answer)
        status = body.get("status")
        if status != "OK":
            raise LicenseRefused(
                f"the Widevine license server refused: {str(status)[:100]}",
                vendor_status=str(status)[:100],
            )
        return base64.b64decode(body["license"], validate=True)
    except AppError:
        raise
    except (ValueError, KeyError, TypeError, AttributeError):
        raise LicenseServerUnavailable(
            "the Widevine license server's answer is not a license"
        ) from None


# --- PlayReady and FairPlay: a signed entitlement ---------------------------------------------

# PlayReady minimum security levels and output protection levels (OPL) for uncompressed
# digital video: 300 needs HDCP, 270 allows HDCP-less outputs only downscaled, 100 none.
PLAYREADY_LEVEL = {Security.software: 2000, Security.hardware: 3000}
PLAYREADY_OPL = {Hdcp.none: 100, Hdcp.v1: 270, Hdcp.v2: 300}


def entitlement_token(entitlement: Entitlement, system: LicenseSystem, secret: str) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "aud": ENTITLEMENT_AUDIENCE,
        "iat": now,
        "exp": now + 300,
        "sub": entitlement.session_id,
        "system": system.value,
        "content_id": entitlement.release_id,
        "license": {"duration_seconds": entitlement.license_seconds, "persistent": False},
        "content_keys": list(entitlement.key_ids),
        "rungs": [
            {
                "height": r.height,
                "security": r.security.value,
                "hdcp": r.hdcp.value,
                **(
                    {
                        "min_security_level": PLAYREADY_LEVEL[r.security],
                        "uncompressed_digital_video_opl": PLAYREADY_OPL[r.hdcp],
                    }
                    if system is LicenseSystem.playready
                    else {"hdcp_type": 1 if r.hdcp is Hdcp.v2 else 0}
                ),
            }
            for r in entitlement.rungs
        ],
    }
    return str(jwt.encode(claims, secret, algorithm="HS256"))


def _configured(url: str, secret: str, name: str) -> None:
    if not url or not secret:
        raise LicenseSystemOff(f"{name} is not configured (license URL and auth key)")


# --- the call ----------------------------------------------------------------------------------


def _post(url: str, content: bytes, headers: dict[str, str], timeout: float) -> bytes:
    try:
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream("POST", url, content=content, headers=headers) as response,
        ):
            chunks = []
            size = 0
            for chunk in response.iter_bytes():
                size += len(chunk)
                if size > MAX_LICENSE_BYTES:
                    raise LicenseServerUnavailable("the license server's answer is too large")
                chunks.append(chunk)
            status = response.status_code
    except httpx.HTTPError as exc:
        raise LicenseServerUnavailable(
            f"the license server cannot be reached ({type(exc).__name__})"
        ) from None
    body = b"".join(chunks)
    if status in (400, 401, 403):
        raise LicenseRefused("the license server refused the challenge", vendor_status=status)
    if status != 200:
        raise LicenseServerUnavailable(f"the license server answered {status}")
    return body


def request_license(
    system: LicenseSystem, challenge: bytes, entitlement: Entitlement, settings: Settings
) -> VendorAnswer:
    """Forward a checked challenge with the entitlement; the license for the player."""
    timeout = settings.drm_vendor_timeout_seconds
    if system is LicenseSystem.widevine:
        if not settings.drm_widevine_license_url:
            raise LicenseSystemOff("widevine is not configured (license URL)")
        sent = widevine_request(challenge, entitlement, settings)
        answer = _post(
            settings.drm_widevine_license_url,
            sent,
            {"Content-Type": "application/json"},
            timeout,
        )
        return VendorAnswer(widevine_license(answer), "application/octet-stream")
    if system is LicenseSystem.playready:
        secret = settings.drm_playready_auth_key.get_secret_value()
        _configured(settings.drm_playready_license_url, secret, "playready")
        answer = _post(
            settings.drm_playready_license_url,
            challenge,
            {
                "Content-Type": "text/xml; charset=utf-8",
                "SOAPAction": f'"{PLAYREADY_SOAP_ACTION}"',
                "Authorization": f"Bearer {entitlement_token(entitlement, system, secret)}",
            },
            timeout,
        )
        return VendorAnswer(answer, "text/xml; charset=utf-8")
    if system is LicenseSystem.fairplay:
        secret = settings.drm_fairplay_auth_key.get_secret_value()
        _configured(settings.drm_fairplay_license_url, secret, "fairplay")
        answer = _post(
            settings.drm_fairplay_license_url,
            json.dumps({"spc": _b64(challenge), "asset_id": entitlement.release_id}).encode(),
            {
                "Content-Type": "application/json",
                "Authorization": f"Bearer {entitlement_token(entitlement, system, secret)}",
            },
            timeout,
        )
        try:
            ckc = base64.b64decode(json.loads(answer)["ckc"], validate=True)
        except (ValueError, KeyError, TypeError):
            raise LicenseServerUnavailable("the FairPlay server's answer has no CKC") from None
        return VendorAnswer(ckc, "application/octet-stream")
    raise LicenseSystemOff(f"{system.value} is not a vendor system")  # pragma: no cover
