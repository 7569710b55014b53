"""One contract, two backends: a local directory and an S3-compatible server over HTTP."""

from __future__ import annotations

import base64
import hashlib
import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.errors import InvalidInput, NotFound
from core.storage import LocalStore, ObjectStore, S3Store, UploadedPart

MiB = 1024 * 1024


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ObjectStore]:
    if request.param == "local":
        yield LocalStore(tmp_path / "media")
        return
    import boto3

    endpoint = request.getfixturevalue("s3_server")
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1")
    s3 = S3Store(f"test-{uuid.uuid4().hex[:10]}", client)
    s3.ensure_bucket()
    yield s3


def sha256_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def test_put_get_list_delete(store: ObjectStore, tmp_path: Path) -> None:
    store.put_bytes("releases/r1/master.json", b'{"a": 1}', "application/json")
    source = tmp_path / "poster.jpg"
    source.write_bytes(os.urandom(3000))
    store.put_file("releases/r1/poster.jpg", source, "image/jpeg")

    assert store.get_bytes("releases/r1/master.json") == b'{"a": 1}'
    assert store.size("releases/r1/poster.jpg") == 3000
    assert store.exists("releases/r1/poster.jpg")
    assert store.list_keys("releases/r1/") == ["releases/r1/master.json", "releases/r1/poster.jpg"]
    target = tmp_path / "copy.jpg"
    store.download_to("releases/r1/poster.jpg", target)
    assert target.read_bytes() == source.read_bytes()

    assert store.delete_prefix("releases/r1/") == 2
    assert not store.exists("releases/r1/poster.jpg")
    with pytest.raises(NotFound):
        store.get_bytes("releases/r1/master.json")


@pytest.mark.parametrize("key", ["../etc/passwd", "/abs", "a//b", "a/./b", "a/../../b", ""])
def test_keys_cannot_escape_the_store(store: ObjectStore, key: str) -> None:
    with pytest.raises(InvalidInput):
        store.put_bytes(key, b"x")


def test_multipart_upload_resumes_after_a_dropped_part(store: ObjectStore) -> None:
    """A client uploads parts, loses its connection mid-way, lists what arrived, resumes."""
    key = "uploads/u1/master.mov"
    parts_data = [os.urandom(5 * MiB), os.urandom(5 * MiB), os.urandom(1 * MiB)]
    upload_id = store.create_multipart(key, "video/quicktime")

    first = store.upload_part(
        key, upload_id, 1, io.BytesIO(parts_data[0]), sha256_b64(parts_data[0])
    )
    # Part 2 is sent with the checksum of the bytes the client meant to send, but the
    # connection corrupts them: the store refuses the part instead of keeping bad bytes.
    with pytest.raises(InvalidInput) as bad:
        store.upload_part(
            key, upload_id, 2, io.BytesIO(parts_data[1][: 2 * MiB]), sha256_b64(parts_data[1])
        )
    assert bad.value.code == "part_checksum_mismatch"

    listed = store.list_parts(key, upload_id)
    assert [p.number for p in listed] == [1], "only the good part is on the server"
    assert listed[0].etag == first.etag

    second = store.upload_part(
        key, upload_id, 2, io.BytesIO(parts_data[1]), sha256_b64(parts_data[1])
    )
    third = store.upload_part(
        key, upload_id, 3, io.BytesIO(parts_data[2]), sha256_b64(parts_data[2])
    )
    store.complete_multipart(key, upload_id, [first, second, third])

    assert store.get_bytes(key) == b"".join(parts_data)
    with pytest.raises(NotFound):
        store.list_parts(key, upload_id)


def test_complete_refuses_parts_that_were_never_uploaded(store: ObjectStore) -> None:
    key = "uploads/u2/master.mov"
    upload_id = store.create_multipart(key)
    data = os.urandom(5 * MiB)
    part = store.upload_part(key, upload_id, 1, io.BytesIO(data))
    with pytest.raises(InvalidInput) as refused:
        store.complete_multipart(key, upload_id, [part, UploadedPart(2, 10, "0" * 32)])
    assert refused.value.code == "invalid_part"
    assert not store.exists(key)


def test_abort_discards_parts(store: ObjectStore) -> None:
    key = "uploads/u3/master.mov"
    upload_id = store.create_multipart(key)
    store.upload_part(key, upload_id, 1, io.BytesIO(b"abc"))
    store.abort_multipart(key, upload_id)
    with pytest.raises(NotFound):
        store.list_parts(key, upload_id)


def test_presigned_part_upload_goes_straight_to_s3(s3_server: str) -> None:
    """Clients PUT parts to presigned URLs (no proxy in the path); S3 checks the checksum."""
    import boto3

    client = boto3.client("s3", endpoint_url=s3_server, region_name="us-east-1")
    s3 = S3Store(f"test-{uuid.uuid4().hex[:10]}", client)
    s3.ensure_bucket()
    key = "uploads/u4/master.mxf"
    upload_id = s3.create_multipart(key)
    data = os.urandom(5 * MiB)
    url = s3.presign_part(key, upload_id, 1, 600, sha256_b64(data))
    assert url is not None
    assert url.startswith(s3_server)
    response = httpx.put(
        url, content=data, headers={"x-amz-checksum-sha256": sha256_b64(data)}, timeout=30
    )
    assert response.status_code == 200, response.text
    listed = s3.list_parts(key, upload_id)
    assert [(p.number, p.size) for p in listed] == [(1, len(data))]
    s3.complete_multipart(key, upload_id, listed)
    assert s3.get_bytes(key) == data
    download = s3.presign_get(key, 60)
    assert download is not None
    assert httpx.get(download, timeout=30).content == data
