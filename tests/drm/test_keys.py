"""Content keys at rest: envelope-encrypted under a local KEK file or KMS over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from cryptography.exceptions import InvalidTag
from sqlalchemy import select

from core.db import unit_of_work
from core.settings import reset_settings_cache
from drm import keys
from drm.envelope import KmsKek, LocalKek
from drm.models import ContentKey
from tests.conftest import Configure

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
def local_kek(tmp_path: Path, configure: Configure) -> Iterator[Path]:
    path = tmp_path / "keys" / "kek.json"
    configure(kek_file=str(path), key_encryption="local")
    keys.reset()
    yield path
    keys.reset()


def _rows() -> list[ContentKey]:
    with unit_of_work() as session:
        rows = list(session.scalars(select(ContentKey)))
        session.expunge_all()
        return rows


def test_keys_are_stored_only_wrapped(local_kek: Path) -> None:
    with unit_of_work() as session:
        created = keys.create_content_key(session, "release-1")
    (row,) = _rows()
    assert len(created.key) == 16
    assert created.key not in row.wrapped_key
    assert row.kek_ref == "local:v1"
    assert local_kek.stat().st_mode & 0o777 == 0o600
    keys.reset()  # a fresh process: nothing cached
    with unit_of_work() as session:
        assert keys.content_key(session, created.key_id).key == created.key
        assert keys.release_key(session, "release-1").key == created.key


def test_a_wrapped_key_moved_to_another_row_does_not_open(local_kek: Path) -> None:
    with unit_of_work() as session:
        first = keys.create_content_key(session, "r1")
        second = keys.create_content_key(session, "r2")
    rows = {r.key_id: r for r in _rows()}
    kek = LocalKek(local_kek)
    with pytest.raises(InvalidTag):
        kek.unwrap(second.key_id, rows[first.key_id].wrapped_key, rows[first.key_id].kek_ref)


def test_kek_rotation_rewraps_without_changing_content_keys(local_kek: Path) -> None:
    with unit_of_work() as session:
        made = [keys.create_content_key(session, f"r{i}") for i in range(3)]
    before = {r.key_id: r.wrapped_key for r in _rows()}
    with unit_of_work() as session:
        ref, count = keys.rotate_kek(session)
    assert (ref, count) == ("local:v2", 3)
    after = _rows()
    assert {r.kek_ref for r in after} == {"local:v2"}
    assert all(before[r.key_id] != r.wrapped_key for r in after)
    keys.reset()
    with unit_of_work() as session:
        assert [keys.content_key(session, m.key_id).key for m in made] == [m.key for m in made]
    assert set(json.loads(local_kek.read_text())["keys"]) == {"v1", "v2"}


def test_kms_envelope_over_http(s3_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """moto's server speaks the KMS API on the same loopback endpoint."""
    kms = boto3.client("kms", endpoint_url=s3_server, region_name="us-east-1")
    kms_key = kms.create_key(Description="pocketcinema test KEK")["KeyMetadata"]["KeyId"]
    monkeypatch.setenv("POCKETCINEMA_KEY_ENCRYPTION", "kms")
    monkeypatch.setenv("POCKETCINEMA_KMS_KEY_ID", kms_key)
    monkeypatch.setenv("POCKETCINEMA_KMS_ENDPOINT_URL", s3_server)
    reset_settings_cache()
    keys.reset()
    try:
        assert isinstance(keys.wrapper(), KmsKek)
        with unit_of_work() as session:
            created = keys.create_content_key(session, "release-kms")
        (row,) = _rows()
        assert row.kek_ref == f"kms:{kms_key}"
        assert created.key not in row.wrapped_key
        keys.reset()
        with unit_of_work() as session:
            assert keys.content_key(session, created.key_id).key == created.key
        # The encryption context binds the envelope to its key id.
        with pytest.raises(kms.exceptions.InvalidCiphertextException):
            KmsKek(kms, kms_key).unwrap("another-key-id", row.wrapped_key, row.kek_ref)
    finally:
        monkeypatch.undo()
        reset_settings_cache()
        keys.reset()
