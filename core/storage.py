"""Object storage: one interface, a local directory or any S3-compatible store.

Keys are ``/``-separated paths such as ``releases/<id>/master/source.mov``. Everything
streams: masters of hundreds of GB never sit in memory, only one buffer at a time.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, BinaryIO, Protocol

from core.errors import InvalidInput, NotFound
from core.settings import Settings, StorageBackend, get_settings

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

CHUNK = 1024 * 1024
_KEY_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._\-/]{0,1023}$")


def check_key(key: str) -> str:
    """Refuse keys that could escape the store's root (``..``, absolute, odd characters)."""
    if not _KEY_RE.match(key) or any(part in ("", ".", "..") for part in key.split("/")):
        # The key is not echoed: it may be (part of) an internal path, and an error message
        # is no place to reflect what an attacker sent.
        raise InvalidInput(
            "invalid storage key: use letters, digits and . _ - / (no empty, . or .. parts)",
            code="invalid_storage_key",
        )
    return key


@dataclass(frozen=True)
class UploadedPart:
    number: int
    size: int
    etag: str
    checksum_sha256: str | None = None  # base64, as S3 reports it


class ObjectStore(Protocol):
    """What the domain needs from storage; both backends pass the same contract tests."""

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None: ...
    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None: ...
    def get_bytes(self, key: str) -> bytes: ...
    def open_read(self, key: str) -> BinaryIO: ...
    def download_to(self, key: str, path: Path) -> None: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def list_keys(self, prefix: str) -> list[str]: ...
    def delete(self, key: str) -> None: ...
    def delete_prefix(self, prefix: str) -> int: ...
    def local_path(self, key: str) -> Path | None: ...
    def check(self) -> None: ...

    # Multipart upload (resumable): the S3 semantics, which the local store imitates.
    def create_multipart(self, key: str, content_type: str | None = None) -> str: ...
    def upload_part(
        self,
        key: str,
        upload_id: str,
        number: int,
        stream: IO[bytes],
        checksum_sha256: str | None = None,
    ) -> UploadedPart: ...
    def presign_part(
        self, key: str, upload_id: str, number: int, expires: int, checksum_sha256: str | None
    ) -> str | None: ...
    def list_parts(self, key: str, upload_id: str) -> list[UploadedPart]: ...
    def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> None: ...
    def abort_multipart(self, key: str, upload_id: str) -> None: ...
    def presign_get(self, key: str, expires: int) -> str | None: ...


def _b64_sha256(digest: bytes) -> str:
    return base64.b64encode(digest).decode()


class LocalStore:
    """A directory on disk. Writes go to a temporary file first, then an atomic rename."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.root.mkdir(parents=True, exist_ok=True)
        self._uploads = self.root / ".multipart"

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def _write_stream(self, path: Path, chunks: Iterable[bytes]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self._write_stream(self._path(key), [data])

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        target = self._path(key)
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        os.close(fd)
        shutil.copyfile(path, tmp)
        os.replace(tmp, target)

    def get_bytes(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound("no such object", code="object_not_found") from None

    def open_read(self, key: str) -> BinaryIO:
        try:
            return self._path(key).open("rb")
        except FileNotFoundError:
            raise NotFound("no such object", code="object_not_found") from None

    def download_to(self, key: str, path: Path) -> None:
        with self.open_read(key) as src:
            self._write_stream(path, iter(lambda: src.read(CHUNK), b""))

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise NotFound("no such object", code="object_not_found") from None

    def list_keys(self, prefix: str) -> list[str]:
        base = self.root
        keys = []
        for path in base.rglob("*"):
            if path.is_file() and not path.name.startswith(".tmp-"):
                key = path.relative_to(base).as_posix()
                if key.startswith(prefix) and not key.startswith(".multipart/"):
                    keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list_keys(prefix)
        for key in keys:
            self.delete(key)
        return len(keys)

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def check(self) -> None:
        probe = self.root / ".readyz"
        probe.write_bytes(b"ok")
        probe.unlink()

    # --- multipart -------------------------------------------------------------------------
    def _upload_dir(self, key: str, upload_id: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{32}", upload_id):
            raise NotFound("unknown upload", code="upload_not_found")
        folder = self._uploads / upload_id
        meta = folder / "key"
        if not meta.is_file() or meta.read_text() != check_key(key):
            raise NotFound("unknown upload", code="upload_not_found")
        return folder

    def create_multipart(self, key: str, content_type: str | None = None) -> str:
        upload_id = os.urandom(16).hex()
        folder = self._uploads / upload_id
        folder.mkdir(parents=True)
        (folder / "key").write_text(check_key(key))
        return upload_id

    def upload_part(
        self,
        key: str,
        upload_id: str,
        number: int,
        stream: IO[bytes],
        checksum_sha256: str | None = None,
    ) -> UploadedPart:
        folder = self._upload_dir(key, upload_id)
        if not 1 <= number <= 10_000:
            raise InvalidInput("part number must be 1..10000", code="invalid_part_number")
        md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    md5.update(chunk)
                    sha.update(chunk)
                    size += len(chunk)
                    out.write(chunk)
            actual = _b64_sha256(sha.digest())
            if checksum_sha256 is not None and checksum_sha256 != actual:
                raise InvalidInput(
                    f"part {number} checksum mismatch: the bytes received are not the bytes sent",
                    code="part_checksum_mismatch",
                )
            # A retried part replaces the earlier attempt atomically, as on S3.
            os.replace(tmp, folder / f"{number:05d}.part")
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return UploadedPart(number=number, size=size, etag=md5.hexdigest(), checksum_sha256=actual)

    def presign_part(
        self, key: str, upload_id: str, number: int, expires: int, checksum_sha256: str | None
    ) -> str | None:
        return None  # parts travel through the API in the embedded default

    def list_parts(self, key: str, upload_id: str) -> list[UploadedPart]:
        folder = self._upload_dir(key, upload_id)
        parts = []
        for path in sorted(folder.glob("*.part")):
            md5, sha = hashlib.md5(usedforsecurity=False), hashlib.sha256()
            with path.open("rb") as src:
                while chunk := src.read(CHUNK):
                    md5.update(chunk)
                    sha.update(chunk)
            parts.append(
                UploadedPart(
                    number=int(path.stem),
                    size=path.stat().st_size,
                    etag=md5.hexdigest(),
                    checksum_sha256=_b64_sha256(sha.digest()),
                )
            )
        return parts

    def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> None:
        folder = self._upload_dir(key, upload_id)
        have = {p.number: p for p in self.list_parts(key, upload_id)}
        numbers = [p.number for p in parts]
        if not parts or numbers != sorted(set(numbers)):
            raise InvalidInput("parts must be listed once each, ascending", code="invalid_parts")
        for part in parts:
            stored = have.get(part.number)
            if stored is None or stored.etag != part.etag.strip('"'):
                raise InvalidInput(f"part {part.number} is missing or differs", code="invalid_part")

        def chunks() -> Iterator[bytes]:
            for part in parts:
                with (folder / f"{part.number:05d}.part").open("rb") as src:
                    yield from iter(lambda: src.read(CHUNK), b"")

        self._write_stream(self._path(key), chunks())
        shutil.rmtree(folder, ignore_errors=True)

    def abort_multipart(self, key: str, upload_id: str) -> None:
        shutil.rmtree(self._upload_dir(key, upload_id), ignore_errors=True)

    def presign_get(self, key: str, expires: int) -> str | None:
        return None


class S3Store:
    """Amazon S3 or any S3-compatible server (MinIO, R2, moto) through boto3."""

    def __init__(self, bucket: str, client: S3Client) -> None:
        self.bucket = bucket
        self.client = client

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Store:
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=settings.s3_endpoint_url,
            region_name=settings.s3_region,
            config=Config(
                signature_version="s3v4", retries={"max_attempts": 5, "mode": "standard"}
            ),
        )
        return cls(settings.s3_bucket, client)

    def _missing(self, exc: Exception, key: str) -> NotFound | None:
        from botocore.exceptions import ClientError

        if isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code") in {
            "404",
            "NoSuchKey",
            "NotFound",
        }:
            return NotFound("no such object", code="object_not_found")
        return None

    def _extra(self, content_type: str | None) -> dict[str, Any]:
        return {"ContentType": content_type} if content_type else {}

    def put_bytes(self, key: str, data: bytes, content_type: str | None = None) -> None:
        self.client.put_object(
            Bucket=self.bucket, Key=check_key(key), Body=data, **self._extra(content_type)
        )

    def put_file(self, key: str, path: Path, content_type: str | None = None) -> None:
        # upload_file switches to multipart for big files and streams from disk.
        self.client.upload_file(
            str(path), self.bucket, check_key(key), ExtraArgs=self._extra(content_type) or None
        )

    def get_bytes(self, key: str) -> bytes:
        with self.open_read(key) as body:
            return body.read()

    def open_read(self, key: str) -> BinaryIO:
        try:
            obj = self.client.get_object(Bucket=self.bucket, Key=check_key(key))
        except Exception as exc:
            raise (self._missing(exc, key) or exc) from None
        return obj["Body"]  # type: ignore[return-value]  # StreamingBody reads like a file

    def download_to(self, key: str, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self.client.download_file(self.bucket, check_key(key), str(path))
        except Exception as exc:
            raise (self._missing(exc, key) or exc) from None

    def exists(self, key: str) -> bool:
        try:
            self.client.head_object(Bucket=self.bucket, Key=check_key(key))
        except Exception as exc:
            if self._missing(exc, key):
                return False
            raise
        return True

    def size(self, key: str) -> int:
        try:
            return self.client.head_object(Bucket=self.bucket, Key=check_key(key))["ContentLength"]
        except Exception as exc:
            raise (self._missing(exc, key) or exc) from None

    def list_keys(self, prefix: str) -> list[str]:
        keys: list[str] = []
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(keys)

    def delete(self, key: str) -> None:
        self.client.delete_object(Bucket=self.bucket, Key=check_key(key))

    def delete_prefix(self, prefix: str) -> int:
        keys = self.list_keys(prefix)
        for start in range(0, len(keys), 1000):
            batch = [{"Key": k} for k in keys[start : start + 1000]]
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch})  # type: ignore[typeddict-item]
        return len(keys)

    def local_path(self, key: str) -> Path | None:
        return None

    def check(self) -> None:
        self.client.head_bucket(Bucket=self.bucket)

    def ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    # --- multipart -------------------------------------------------------------------------
    def create_multipart(self, key: str, content_type: str | None = None) -> str:
        res = self.client.create_multipart_upload(
            Bucket=self.bucket,
            Key=check_key(key),
            ChecksumAlgorithm="SHA256",
            **self._extra(content_type),
        )
        return res["UploadId"]

    def upload_part(
        self,
        key: str,
        upload_id: str,
        number: int,
        stream: IO[bytes],
        checksum_sha256: str | None = None,
    ) -> UploadedPart:
        # The API path (used when a client cannot PUT to S3 directly) spools to disk so the
        # part is hashed and sent with a known length, never held in memory.
        sha = hashlib.sha256()
        with tempfile.TemporaryFile() as spool:
            size = 0
            while chunk := stream.read(CHUNK):
                sha.update(chunk)
                size += len(chunk)
                spool.write(chunk)
            actual = _b64_sha256(sha.digest())
            if checksum_sha256 is not None and checksum_sha256 != actual:
                raise InvalidInput(
                    f"part {number} checksum mismatch: the bytes received are not the bytes sent",
                    code="part_checksum_mismatch",
                )
            spool.seek(0)
            res = self.client.upload_part(
                Bucket=self.bucket,
                Key=check_key(key),
                UploadId=upload_id,
                PartNumber=number,
                Body=spool,
                ContentLength=size,
                ChecksumSHA256=actual,
            )
        return UploadedPart(
            number=number, size=size, etag=res["ETag"].strip('"'), checksum_sha256=actual
        )

    def presign_part(
        self, key: str, upload_id: str, number: int, expires: int, checksum_sha256: str | None
    ) -> str | None:
        params: dict[str, Any] = {
            "Bucket": self.bucket,
            "Key": check_key(key),
            "UploadId": upload_id,
            "PartNumber": number,
        }
        if checksum_sha256:
            # Signed into the URL: S3 refuses the PUT unless the body hashes to this value.
            params["ChecksumSHA256"] = checksum_sha256
        return self.client.generate_presigned_url("upload_part", Params=params, ExpiresIn=expires)

    def list_parts(self, key: str, upload_id: str) -> list[UploadedPart]:
        parts: list[UploadedPart] = []
        paginator = self.client.get_paginator("list_parts")
        try:
            for page in paginator.paginate(
                Bucket=self.bucket, Key=check_key(key), UploadId=upload_id
            ):
                parts.extend(
                    UploadedPart(
                        number=p["PartNumber"],
                        size=p["Size"],
                        etag=p["ETag"].strip('"'),
                        checksum_sha256=p.get("ChecksumSHA256"),
                    )
                    for p in page.get("Parts", [])
                )
        except Exception as exc:
            raise self._upload_missing(exc) from None
        return parts

    def _upload_missing(self, exc: Exception) -> Exception:
        from botocore.exceptions import ClientError

        if not isinstance(exc, ClientError):
            return exc
        code = exc.response.get("Error", {}).get("Code")
        if code == "NoSuchUpload":
            return NotFound("unknown upload", code="upload_not_found")
        if code in {"InvalidPart", "InvalidPartOrder", "EntityTooSmall"}:
            return InvalidInput(
                f"the parts listed do not match the upload ({code})", code="invalid_part"
            )
        return exc

    def complete_multipart(self, key: str, upload_id: str, parts: list[UploadedPart]) -> None:
        listed: list[dict[str, Any]] = []
        for p in parts:
            item: dict[str, Any] = {"PartNumber": p.number, "ETag": f'"{p.etag}"'}
            if p.checksum_sha256:
                item["ChecksumSHA256"] = p.checksum_sha256
            listed.append(item)
        try:
            self.client.complete_multipart_upload(
                Bucket=self.bucket,
                Key=check_key(key),
                UploadId=upload_id,
                MultipartUpload={"Parts": listed},  # type: ignore[typeddict-item]
            )
        except Exception as exc:
            raise self._upload_missing(exc) from None

    def abort_multipart(self, key: str, upload_id: str) -> None:
        try:
            self.client.abort_multipart_upload(
                Bucket=self.bucket, Key=check_key(key), UploadId=upload_id
            )
        except Exception as exc:
            raise self._upload_missing(exc) from None

    def presign_get(self, key: str, expires: int) -> str | None:
        return self.client.generate_presigned_url(
            "get_object", Params={"Bucket": self.bucket, "Key": check_key(key)}, ExpiresIn=expires
        )


def make_store(settings: Settings) -> ObjectStore:
    if settings.storage_backend is StorageBackend.s3:
        return S3Store.from_settings(settings)
    return LocalStore(settings.media_dir)


_store: ObjectStore | None = None


def get_store() -> ObjectStore:
    global _store
    if _store is None:
        _store = make_store(get_settings())
    return _store


def reset_store() -> None:
    global _store
    _store = None
