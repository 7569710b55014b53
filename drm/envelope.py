"""Envelope encryption of content keys: a local key-encryption key file, or AWS KMS.

Both bind the wrapped key to its key id (AES-GCM associated data / KMS encryption context),
so a wrapped key copied onto another row does not decrypt.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.settings import KeyEncryption, Mode, Settings

if TYPE_CHECKING:
    from mypy_boto3_kms import KMSClient


class KeyWrapper(Protocol):
    def wrap(self, key_id: str, plaintext: bytes) -> tuple[bytes, str]:
        """Return (wrapped bytes, reference of the key-encryption key used)."""
        ...

    def unwrap(self, key_id: str, wrapped: bytes, kek_ref: str) -> bytes: ...

    def current_ref(self) -> str: ...

    def rotate(self) -> str:
        """Make a new key-encryption key current; old ones still unwrap. Returns its ref."""
        ...


class LocalKek:
    """Versioned AES-256 keys in a JSON file (mode 0600), created on first use.

    Fit for the embedded default and single-host installs; production uses KMS so the
    key-encryption key never sits on the application host's disk."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        # Production never creates one: a key file made by one container is a key the
        # others do not have, and content keys it wraps open nowhere else.
        self.create = create

    def _load(self) -> dict[str, object]:
        if not self.path.exists():
            if not self.create:
                raise FileNotFoundError(
                    f"key-encryption key file {self.path} does not exist; make one with "
                    "`pocketcinema create-kek FILE` and mount it in every role"
                )
            with contextlib.suppress(FileExistsError):  # another process made it first
                create_key_file(self.path)
        data: dict[str, object] = json.loads(self.path.read_text())
        return data

    def _save(self, data: dict[str, object]) -> None:
        tmp = self.path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out)
        os.replace(tmp, self.path)

    def _key(self, version: str) -> bytes:
        keys = self._load()["keys"]
        if not isinstance(keys, dict) or version not in keys:
            raise KeyError(f"key-encryption key {version} is not in {self.path}")
        return base64.b64decode(keys[version])

    def current_ref(self) -> str:
        return f"local:{self._load()['current']}"

    def wrap(self, key_id: str, plaintext: bytes) -> tuple[bytes, str]:
        ref = self.current_ref()
        nonce = os.urandom(12)
        sealed = AESGCM(self._key(ref.removeprefix("local:"))).encrypt(
            nonce, plaintext, key_id.encode()
        )
        return nonce + sealed, ref

    def unwrap(self, key_id: str, wrapped: bytes, kek_ref: str) -> bytes:
        if not kek_ref.startswith("local:"):
            raise ValueError(f"{kek_ref} was not wrapped by a local key-encryption key")
        aes = AESGCM(self._key(kek_ref.removeprefix("local:")))
        return aes.decrypt(wrapped[:12], wrapped[12:], key_id.encode())

    def rotate(self) -> str:
        data = self._load()
        keys = data["keys"]
        if not isinstance(keys, dict):
            raise TypeError("malformed key-encryption key file")
        version = f"v{len(keys) + 1}"
        keys[version] = base64.b64encode(os.urandom(32)).decode()
        data["current"] = version
        self._save(data)
        return f"local:{version}"


class KmsKek:
    """AWS KMS (or a KMS-compatible endpoint): Encrypt/Decrypt with an encryption context."""

    def __init__(self, client: KMSClient, key_id: str) -> None:
        self.client = client
        self.key_id = key_id

    def current_ref(self) -> str:
        return f"kms:{self.key_id}"

    def wrap(self, key_id: str, plaintext: bytes) -> tuple[bytes, str]:
        res = self.client.encrypt(
            KeyId=self.key_id, Plaintext=plaintext, EncryptionContext={"content_key_id": key_id}
        )
        return res["CiphertextBlob"], self.current_ref()

    def unwrap(self, key_id: str, wrapped: bytes, kek_ref: str) -> bytes:
        res = self.client.decrypt(
            CiphertextBlob=wrapped,
            KeyId=kek_ref.removeprefix("kms:"),
            EncryptionContext={"content_key_id": key_id},
        )
        return res["Plaintext"]

    def rotate(self) -> str:
        # KMS rotates its backing key material itself (EnableKeyRotation); moving to another
        # KMS key means changing POCKETCINEMA_KMS_KEY_ID and re-wrapping (drm.service).
        return self.current_ref()


def make_wrapper(settings: Settings) -> KeyWrapper:
    if settings.key_encryption is KeyEncryption.kms:
        import boto3

        client = boto3.client(
            "kms", endpoint_url=settings.kms_endpoint_url, region_name=settings.s3_region
        )
        return KmsKek(client, settings.kms_key_id)
    if settings.kek_file is None:  # pragma: no cover - the settings validator fills it
        raise RuntimeError("kek_file is not set")
    return LocalKek(settings.kek_file, create=settings.mode is not Mode.production)


def create_key_file(path: Path) -> None:
    """Write a new key-encryption key file (mode 0600) that every role then mounts."""
    if path.exists():
        raise FileExistsError(f"{path} exists; keys in it may still wrap content keys")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = {"current": "v1", "keys": {"v1": base64.b64encode(os.urandom(32)).decode()}}
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out)
    os.replace(tmp, path)
