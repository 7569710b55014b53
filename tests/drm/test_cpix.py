"""CPIX 2.3 documents: written, read back, shaped as the schema says, bad ones refused."""

from __future__ import annotations

import base64
import os
import struct
import uuid

import pytest
from defusedxml import ElementTree as SafeET

from drm import cpix

NS = {"cpix": cpix.CPIX_NS, "pskc": cpix.PSKC_NS}
# The order of CPIX's top-level sequence (DASH-IF CPIX 2.3, section 5.3.1).
SCHEMA_ORDER = [
    "DeliveryDataList",
    "ContentKeyList",
    "DRMSystemList",
    "ContentKeyPeriodList",
    "ContentKeyUsageRuleList",
    "UpdateHistoryItemList",
    "Signature",
]


def period_keys(n: int = 3) -> list[tuple[str, bytes | None]]:
    return [(os.urandom(16).hex(), os.urandom(16)) for _ in range(n)]


def boxes(data: bytes) -> tuple[bytes, bytes]:
    size = struct.unpack(">I", data[:4])[0]
    assert size == len(data)
    return data[4:8], data[8:]


def test_a_release_document_round_trips() -> None:
    keys = period_keys()
    doc = cpix.release_document("release-1", keys)
    again = cpix.read(cpix.write(doc))
    assert again == doc
    assert [(k.kid, k.key) for k in again.keys] == keys
    # Key n encrypts key period n of video and audio.
    assert {(r.kid, r.period) for r in again.rules} == {(k, n) for n, (k, _) in enumerate(keys)}
    assert {r.track_type for r in again.rules} == {"VIDEO", "AUDIO"}


def test_the_document_has_the_schema_shape() -> None:
    keys = period_keys(2)
    root = SafeET.fromstring(cpix.write(cpix.release_document("release-1", keys)))
    assert root.tag == f"{{{cpix.CPIX_NS}}}CPIX"
    assert root.get("version") == "2.3"
    assert root.get("contentId") == "release-1"
    names = [child.tag.split("}")[1] for child in root]
    assert names == sorted(names, key=SCHEMA_ORDER.index)
    for el in root.iterfind("cpix:ContentKeyList/cpix:ContentKey", NS):
        assert str(uuid.UUID(el.get("kid", ""))) == el.get("kid")
        assert el.get("commonEncryptionScheme") == "cbcs"
        value = el.find("cpix:Data/pskc:Secret/pskc:PlainValue", NS)
        assert value is not None
        assert len(base64.b64decode(value.text or "")) == 16
    systems = root.findall("cpix:DRMSystemList/cpix:DRMSystem", NS)
    assert {s.get("systemId") for s in systems} == set(cpix.SYSTEMS)
    assert len(systems) == 4 * len(keys)
    for system in systems:
        kid = uuid.UUID(system.get("kid", "")).hex
        pssh = system.find("cpix:PSSH", NS)
        if system.get("systemId") == cpix.FAIRPLAY:
            hls = system.find("cpix:HLSSignalingData", NS)
            assert hls is not None
            line = base64.b64decode(hls.text or "").decode()
            assert f'URI="skd://{kid}"' in line
            assert 'KEYFORMAT="com.apple.streamingkeydelivery"' in line
            continue
        assert pssh is not None
        kind, body = boxes(base64.b64decode(pssh.text or ""))
        assert kind == b"pssh"
        assert body[0] == 1  # version 1: the key ids are in the box
        assert str(uuid.UUID(bytes=body[4:20])) == system.get("systemId")
        assert struct.unpack(">I", body[20:24])[0] == 1
        assert body[24:40].hex() == kid
    periods = root.findall("cpix:ContentKeyPeriodList/cpix:ContentKeyPeriod", NS)
    assert [(p.get("id"), p.get("index")) for p in periods] == [
        ("keyPeriod_0", "0"),
        ("keyPeriod_1", "1"),
    ]


def test_playready_header_names_the_key_in_its_byte_order() -> None:
    kid = "00112233445566778899aabbccddeeff"
    pro = cpix.playready_object([kid], "cbcs")
    length, count = struct.unpack("<IH", pro[:6])
    assert (length, count) == (len(pro), 1)
    header = pro[10:].decode("utf-16-le")
    value = base64.b64encode(uuid.UUID(hex=kid).bytes_le).decode()
    assert f'<KID ALGID="AESCBC" VALUE="{value}">' in header


@pytest.mark.parametrize(
    "document",
    [
        b"not xml",
        b'<CPIX xmlns="urn:other"/>',
        b'<!DOCTYPE x [<!ENTITY a "b">]><cpix:CPIX xmlns:cpix="urn:dashif:org:cpix"/>',
        b'<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix"><cpix:ContentKeyList/></cpix:CPIX>',
        b'<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix"><cpix:ContentKeyList>'
        b'<cpix:ContentKey kid="not-a-uuid"/></cpix:ContentKeyList></cpix:CPIX>',
        b'<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix" xmlns:pskc="urn:ietf:params:xml:ns:keyprov:pskc">'
        b'<cpix:ContentKeyList><cpix:ContentKey kid="00112233-4455-6677-8899-aabbccddeeff">'
        b"<cpix:Data><pskc:Secret><pskc:PlainValue>AAAA</pskc:PlainValue></pskc:Secret>"
        b"</cpix:Data></cpix:ContentKey></cpix:ContentKeyList></cpix:CPIX>",
        b'<cpix:CPIX xmlns:cpix="urn:dashif:org:cpix"><cpix:ContentKeyList>'
        b'<cpix:ContentKey kid="00112233-4455-6677-8899-aabbccddeeff"/></cpix:ContentKeyList>'
        b"<cpix:ContentKeyUsageRuleList><cpix:ContentKeyUsageRule "
        b'kid="00112233-4455-6677-8899-aabbccddeeff"><cpix:KeyPeriodFilter periodId="nope"/>'
        b"</cpix:ContentKeyUsageRule></cpix:ContentKeyUsageRuleList></cpix:CPIX>",
    ],
)
def test_bad_documents_are_refused_with_a_code(document: bytes) -> None:
    with pytest.raises(cpix.InvalidCpix) as refused:
        cpix.read(document)
    assert refused.value.code == "invalid_cpix"
    assert refused.value.status == 400
