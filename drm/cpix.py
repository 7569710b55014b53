"""CPIX 2.3 (DASH-IF Content Protection Information Exchange) documents, written and read.

What we exchange with DRM vendors and external packagers: the content keys of a release
(one per key period), the key periods, the usage rules (which track types and which period
each key encrypts) and the DRM system signalling per key (PSSH boxes for Widevine,
PlayReady and the W3C common system; the FairPlay ``EXT-X-KEY`` line). Element order
follows the schema's sequence: ``DeliveryDataList``, ``ContentKeyList``, ``DRMSystemList``,
``ContentKeyPeriodList``, ``ContentKeyUsageRuleList``.

Keys travel as ``pskc:PlainValue`` (the transport is TLS with an authenticated caller);
CPIX's document-key encryption to a recipient certificate is not implemented, and a
document that uses it is refused. Parsing uses ElementTree with DTDs refused.
"""

from __future__ import annotations

import base64
import binascii
import struct
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from xml.etree import ElementTree as ET

from defusedxml import ElementTree as SafeET

from core.errors import InvalidInput

CPIX_NS = "urn:dashif:org:cpix"
PSKC_NS = "urn:ietf:params:xml:ns:keyprov:pskc"
VERSION = "2.3"
ET.register_namespace("cpix", CPIX_NS)
ET.register_namespace("pskc", PSKC_NS)

WIDEVINE = "edef8ba9-79d6-4ace-a3c8-27dcd51d21ed"
PLAYREADY = "9a04f079-9840-4286-ab92-e65be0885f95"
FAIRPLAY = "94ce86fb-07ff-4f43-adb8-93d2fa968ca2"
COMMON = "1077efec-c0b2-4d02-ace3-3c1e52e2fb4b"  # W3C common PSSH (ClearKey)
SYSTEMS = {WIDEVINE: "widevine", PLAYREADY: "playready", FAIRPLAY: "fairplay", COMMON: "clearkey"}
TRACK_TYPES = ("VIDEO", "AUDIO")
MAX_DOCUMENT_BYTES = 1024 * 1024
MAX_KEYS = 1000


class InvalidCpix(InvalidInput):
    status = 400
    code = "invalid_cpix"


def _c(tag: str) -> str:
    return f"{{{CPIX_NS}}}{tag}"


def _p(tag: str) -> str:
    return f"{{{PSKC_NS}}}{tag}"


@dataclass(frozen=True)
class KeyPeriod:
    index: int

    @property
    def id(self) -> str:
        return f"keyPeriod_{self.index}"


@dataclass(frozen=True)
class UsageRule:
    kid: str  # hex
    track_type: str  # VIDEO or AUDIO
    period: int | None  # index of a KeyPeriod, or None: every period


@dataclass(frozen=True)
class DrmSignal:
    kid: str  # hex
    system_id: str  # UUID
    pssh: bytes | None = None
    hls_signaling: str | None = None  # an EXT-X-KEY line


@dataclass(frozen=True)
class ContentKey:
    kid: str  # hex, 32 digits
    key: bytes | None  # 16 bytes; None in a request
    scheme: str = "cbcs"


@dataclass(frozen=True)
class Document:
    content_id: str
    keys: tuple[ContentKey, ...]
    periods: tuple[KeyPeriod, ...] = ()
    rules: tuple[UsageRule, ...] = ()
    systems: tuple[DrmSignal, ...] = field(default=())


# --- DRM signalling -------------------------------------------------------------------------


def _box(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def pssh_box(system_id: str, kids: Sequence[str], data: bytes = b"") -> bytes:
    """A ``pssh`` box: version 1 with the key ids (ISO/IEC 23001-7), carrying ``data``."""
    payload = b"\x01\x00\x00\x00" + uuid.UUID(system_id).bytes
    payload += struct.pack(">I", len(kids)) + b"".join(bytes.fromhex(k) for k in kids)
    payload += struct.pack(">I", len(data)) + data
    return _box(b"pssh", payload)


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def widevine_pssh_data(kids: Sequence[str], content_id: str, scheme: str) -> bytes:
    """``WidevinePsshData`` (protobuf): key_id (2) per key, content_id (4), protection_scheme
    (9, the scheme's four-character code as a number)."""
    out = b""
    for kid in kids:
        out += b"\x12\x10" + bytes.fromhex(kid)
    cid = content_id.encode()
    out += b"\x22" + _varint(len(cid)) + cid
    out += b"\x48" + _varint(int.from_bytes(scheme.encode(), "big"))
    return out


def playready_object(kids: Sequence[str], scheme: str) -> bytes:
    """A PlayReady Object with one WRM header (v4.3): key ids as base64 of the GUID in
    PlayReady's (little-endian) byte order, ``AESCBC`` for cbcs and ``AESCTR`` for cenc."""
    alg = "AESCBC" if scheme == "cbcs" else "AESCTR"
    kid_xml = "".join(
        f'<KID ALGID="{alg}" VALUE="{base64.b64encode(uuid.UUID(hex=k).bytes_le).decode()}"></KID>'
        for k in kids
    )
    header = (
        '<WRMHEADER xmlns="http://schemas.microsoft.com/DRM/2007/03/PlayReadyHeader" '
        f'version="4.3.0.0"><DATA><PROTECTINFO><KIDS>{kid_xml}</KIDS></PROTECTINFO>'
        "</DATA></WRMHEADER>"
    ).encode("utf-16-le")
    record = struct.pack("<HH", 1, len(header)) + header
    return struct.pack("<IH", 6 + len(record), 1) + record


def fairplay_key_line(kid: str) -> str:
    return (
        f'#EXT-X-KEY:METHOD=SAMPLE-AES,URI="skd://{kid}",'
        'KEYFORMAT="com.apple.streamingkeydelivery",KEYFORMATVERSIONS="1"'
    )


def signal(kid: str, system_id: str, content_id: str, scheme: str) -> DrmSignal:
    """The signalling of one key for one DRM system."""
    if system_id == WIDEVINE:
        return DrmSignal(
            kid, system_id, pssh_box(WIDEVINE, [kid], widevine_pssh_data([kid], content_id, scheme))
        )
    if system_id == PLAYREADY:
        return DrmSignal(
            kid, system_id, pssh_box(PLAYREADY, [kid], playready_object([kid], scheme))
        )
    if system_id == FAIRPLAY:
        return DrmSignal(kid, system_id, hls_signaling=fairplay_key_line(kid))
    if system_id == COMMON:
        return DrmSignal(kid, system_id, pssh_box(COMMON, [kid]))
    raise InvalidCpix(f"unknown DRM system {system_id}")


# --- writing -----------------------------------------------------------------------------------


def _uuid(kid_hex: str) -> str:
    return str(uuid.UUID(hex=kid_hex))


def write(doc: Document) -> bytes:
    root = ET.Element(_c("CPIX"), {"contentId": doc.content_id, "version": VERSION})
    keys = ET.SubElement(root, _c("ContentKeyList"))
    for key in doc.keys:
        el = ET.SubElement(
            keys, _c("ContentKey"), {"kid": _uuid(key.kid), "commonEncryptionScheme": key.scheme}
        )
        if key.key is not None:
            data = ET.SubElement(ET.SubElement(el, _c("Data")), _p("Secret"))
            ET.SubElement(data, _p("PlainValue")).text = base64.b64encode(key.key).decode()
    if doc.systems:
        systems = ET.SubElement(root, _c("DRMSystemList"))
        for sig in doc.systems:
            el = ET.SubElement(
                systems, _c("DRMSystem"), {"kid": _uuid(sig.kid), "systemId": sig.system_id}
            )
            if sig.pssh is not None:
                ET.SubElement(el, _c("PSSH")).text = base64.b64encode(sig.pssh).decode()
            if sig.hls_signaling is not None:
                for playlist in ("media", "master"):
                    ET.SubElement(
                        el, _c("HLSSignalingData"), {"playlist": playlist}
                    ).text = base64.b64encode(sig.hls_signaling.encode()).decode()
    if doc.periods:
        periods = ET.SubElement(root, _c("ContentKeyPeriodList"))
        for period in doc.periods:
            ET.SubElement(
                periods, _c("ContentKeyPeriod"), {"id": period.id, "index": str(period.index)}
            )
    if doc.rules:
        rules = ET.SubElement(root, _c("ContentKeyUsageRuleList"))
        for rule in doc.rules:
            el = ET.SubElement(
                rules,
                _c("ContentKeyUsageRule"),
                {"kid": _uuid(rule.kid), "intendedTrackType": rule.track_type},
            )
            if rule.period is not None:
                ET.SubElement(el, _c("KeyPeriodFilter"), {"periodId": KeyPeriod(rule.period).id})
            ET.SubElement(el, _c("VideoFilter" if rule.track_type == "VIDEO" else "AudioFilter"))
    body: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=False)
    return b'<?xml version="1.0" encoding="UTF-8"?>\n' + body


def release_document(
    content_id: str,
    period_keys: Sequence[tuple[str, bytes | None]],
    systems: Sequence[str] = (WIDEVINE, PLAYREADY, FAIRPLAY, COMMON),
    scheme: str = "cbcs",
) -> Document:
    """A release's CPIX: key ``n`` encrypts key period ``n`` of every video and audio track,
    with the signalling of each DRM system."""
    return Document(
        content_id=content_id,
        keys=tuple(ContentKey(kid, key, scheme) for kid, key in period_keys),
        periods=tuple(KeyPeriod(n) for n in range(len(period_keys))),
        rules=tuple(
            UsageRule(kid, track, n)
            for n, (kid, _) in enumerate(period_keys)
            for track in TRACK_TYPES
        ),
        systems=tuple(
            signal(kid, system, content_id, scheme) for kid, _ in period_keys for system in systems
        ),
    )


# --- reading -----------------------------------------------------------------------------------


def _kid(value: str | None) -> str:
    try:
        return uuid.UUID(value or "").hex
    except ValueError:
        raise InvalidCpix(f"not a key id (UUID): {value!r}") from None


def _b64(text: str | None, what: str) -> bytes:
    try:
        return base64.b64decode((text or "").strip(), validate=True)
    except (binascii.Error, ValueError):
        raise InvalidCpix(f"{what} is not base64") from None


def read(data: bytes) -> Document:
    """A CPIX document, checked: the root and namespace, key ids as UUIDs, keys of 16
    bytes, rules and signals naming keys of the document, periods named by the rules."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InvalidCpix(f"a CPIX document is at most {MAX_DOCUMENT_BYTES} bytes")
    try:
        # defusedxml: no DTD, no entities, no external references.
        root = SafeET.fromstring(data, forbid_dtd=True)
    except (ET.ParseError, ValueError) as exc:
        raise InvalidCpix(f"not XML, or XML with a DTD: {exc}") from None
    if root.tag != _c("CPIX"):
        raise InvalidCpix("the root element is not cpix:CPIX (namespace urn:dashif:org:cpix)")
    if root.find(_c("DeliveryDataList")) is not None:
        raise InvalidCpix("encrypted CPIX documents (DeliveryDataList) are not supported")
    keys: list[ContentKey] = []
    for el in root.iterfind(f"{_c('ContentKeyList')}/{_c('ContentKey')}"):
        plain = el.find(f"{_c('Data')}/{_p('Secret')}/{_p('PlainValue')}")
        key = None
        if plain is not None:
            key = _b64(plain.text, "a content key")
            if len(key) != 16:
                raise InvalidCpix("a content key must be 16 bytes")
        keys.append(ContentKey(_kid(el.get("kid")), key, el.get("commonEncryptionScheme", "cbcs")))
    if not 1 <= len(keys) <= MAX_KEYS:
        raise InvalidCpix(f"a CPIX document names 1 to {MAX_KEYS} content keys")
    if len({k.kid for k in keys}) != len(keys):
        raise InvalidCpix("a key id appears twice in ContentKeyList")
    known = {k.kid for k in keys}
    periods: list[KeyPeriod] = []
    period_ids: dict[str, int] = {}
    for el in root.iterfind(f"{_c('ContentKeyPeriodList')}/{_c('ContentKeyPeriod')}"):
        try:
            index = int(el.get("index", ""))
        except ValueError:
            raise InvalidCpix("a ContentKeyPeriod needs an integer index") from None
        periods.append(KeyPeriod(index))
        period_ids[el.get("id") or KeyPeriod(index).id] = index
    rules: list[UsageRule] = []
    for el in root.iterfind(f"{_c('ContentKeyUsageRuleList')}/{_c('ContentKeyUsageRule')}"):
        kid = _kid(el.get("kid"))
        if kid not in known:
            raise InvalidCpix("a usage rule names a key that is not in ContentKeyList")
        track = el.get("intendedTrackType") or (
            "AUDIO" if el.find(_c("AudioFilter")) is not None else "VIDEO"
        )
        period_filter = el.find(_c("KeyPeriodFilter"))
        period = None
        if period_filter is not None:
            period_id = period_filter.get("periodId", "")
            if period_id not in period_ids:
                raise InvalidCpix(f"a usage rule names an unknown key period {period_id!r}")
            period = period_ids[period_id]
        rules.append(UsageRule(kid, track, period))
    systems: list[DrmSignal] = []
    for el in root.iterfind(f"{_c('DRMSystemList')}/{_c('DRMSystem')}"):
        kid = _kid(el.get("kid"))
        if kid not in known:
            raise InvalidCpix("a DRMSystem names a key that is not in ContentKeyList")
        system_id = str(_kid(el.get("systemId")) and uuid.UUID(el.get("systemId", "")))
        pssh_el = el.find(_c("PSSH"))
        hls_el = el.find(_c("HLSSignalingData"))
        systems.append(
            DrmSignal(
                kid,
                system_id,
                _b64(pssh_el.text, "a PSSH") if pssh_el is not None and pssh_el.text else None,
                _b64(hls_el.text, "HLS signaling data").decode()
                if hls_el is not None and hls_el.text
                else None,
            )
        )
    return Document(
        content_id=root.get("contentId", ""),
        keys=tuple(keys),
        periods=tuple(periods),
        rules=tuple(rules),
        systems=tuple(systems),
    )
