"""Resumable, parallel multipart upload of a master through the public upload protocol:
create the upload, ask where to PUT each part (a presigned S3 URL, or the API itself), PUT
the parts, complete.

Each part is sent with its SHA-256 (``x-amz-checksum-sha256``): the store refuses a part
whose bytes changed on the way, and the part is read and sent again. The upload's id is
kept in a small state file in the user's cache directory, one per API and release, with
the file's identity (path, size, modification time): after Ctrl-C or a dropped connection
the same command asks the API which parts arrived and sends only the others. A file that
changed in between has another identity: its old upload is aborted and a new one starts,
so two files' parts never mix.
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pocketcinema.studio_api import ApiProblem, StudioApi, cache_dir

# Refusals that mean the bytes arrived damaged: read the part again and resend it.
# (_check_received raises BadDigest itself when a store kept damaged bytes.)
DAMAGED_PART = frozenset({"part_checksum_mismatch", "BadDigest", "XAmzContentSHA256Mismatch"})
ATTEMPTS = 5  # per part, for damaged parts, dropped connections and 5xx answers


@dataclass
class UploadReport:
    upload_id: str
    asset: dict[str, Any]
    part_count: int
    resumed: bool
    sent_parts: list[int] = field(default_factory=list)  # this run only
    retried_parts: list[int] = field(default_factory=list)  # sent more than once


def b64_sha256(data: bytes) -> str:
    return base64.b64encode(hashlib.sha256(data).digest()).decode()


def state_path(api_url: str, release_id: str, root: Path | None = None) -> Path:
    """Where the master upload to this release is remembered (one per release and API)."""
    name = hashlib.sha256(f"{api_url}\0{release_id}".encode()).hexdigest()[:32]
    return (root or cache_dir() / "uploads") / f"{name}.json"


def file_identity(master: Path) -> str:
    """The file as it is now: a re-exported master (new size or time) is another file."""
    stat = master.stat()
    return f"{master.resolve()}:{stat.st_size}:{stat.st_mtime_ns}"


def _read_part(master: Path, number: int, part_size: int, size: int) -> bytes:
    offset = (number - 1) * part_size
    with master.open("rb") as fh:
        fh.seek(offset)
        return fh.read(min(part_size, size - offset))


def _check_received(response: httpx.Response, md5_hex: str) -> None:
    """Refuse a part the store kept with other bytes than we read. S3 itself checks the
    SHA-256 bound into the presigned URL, but an S3-compatible store may not; its ETag
    for a plain PUT is the MD5 of what it received. Not under SSE-KMS, where the ETag is
    no MD5 (S3 checks the checksum there)."""
    etag = response.headers.get("ETag", "").strip('"').lower()
    kms = response.headers.get("x-amz-server-side-encryption", "").startswith("aws:kms")
    if len(etag) == 32 and not kms and etag != md5_hex:
        raise ApiProblem(400, "BadDigest", "the store received other bytes than were sent")


class _Interrupted(Exception):
    """Another part failed or the user pressed Ctrl-C: stop before the next part."""


def upload_master(
    api: StudioApi,
    master: Path,
    release_id: str,
    *,
    parallel: int = 4,
    state_root: Path | None = None,
    on_start: Callable[[int, int], None] | None = None,
    on_bytes: Callable[[int], None] | None = None,
    on_part: Callable[[int], None] | None = None,
    tamper: Callable[[int, bytes], bytes] | None = None,
) -> UploadReport:
    """Upload ``master`` as the release's master and complete it.

    ``on_start(total, already)`` is called once with the file's size and the bytes the API
    already holds; ``on_bytes(n)`` as parts arrive; ``on_part(number)`` after each part.
    ``tamper`` changes a part's bytes after its checksum is taken (what a flaky network
    does; tests use it). Interrupted (Ctrl-C, a failure), the state file stays so the next
    call resumes."""
    if parallel < 1:
        raise ValueError("parallel must be at least 1")
    size = master.stat().st_size
    state_file = state_path(api.base_url, release_id, state_root)
    upload, resumed = _open_upload(api, master, release_id, size, state_file)
    upload_id = str(upload["id"])
    part_size = int(upload["part_size"])
    have = {int(p["number"]) for p in upload["uploaded_parts"]}
    missing = [n for n in range(1, int(upload["part_count"]) + 1) if n not in have]
    already = sum(int(p["size"]) for p in upload["uploaded_parts"])
    if on_start:
        on_start(size, already)
    report = UploadReport(upload_id, {}, int(upload["part_count"]), resumed)
    stop = threading.Event()
    lock = threading.Lock()

    def send(number: int) -> None:
        try:
            send_part(number)
        except BaseException:
            stop.set()  # here, before this thread takes the next part
            raise

    def send_part(number: int) -> None:
        for attempt in range(1, ATTEMPTS + 1):
            if stop.is_set():
                raise _Interrupted
            data = _read_part(master, number, part_size, size)
            checksum = b64_sha256(data)
            target = api.part_target(upload_id, number, checksum)
            original = hashlib.md5(data, usedforsecurity=False).hexdigest()
            if tamper is not None:
                data = tamper(number, data)
            try:
                response = api.send(
                    target["method"], target["url"], content=data, headers=target["headers"]
                )
                _check_received(response, original)
            except ApiProblem as exc:
                retriable = exc.code in DAMAGED_PART or exc.status >= 500
                if not retriable or attempt == ATTEMPTS:
                    raise
            except httpx.TransportError:
                if attempt == ATTEMPTS:
                    raise
            else:
                with lock:
                    report.sent_parts.append(number)
                    if attempt > 1:
                        report.retried_parts.append(number)
                if on_bytes:
                    on_bytes(len(data))
                if on_part:
                    on_part(number)
                return
            time.sleep(min(0.25 * 2**attempt, 8.0))

    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="part")
    try:
        futures = [pool.submit(send, n) for n in missing]
        wait(futures, return_when=FIRST_EXCEPTION)
        failures = [f.exception() for f in futures if f.done() and f.exception() is not None]
        # The failure itself, not the parts that stopped because of it.
        cause = next((e for e in failures if not isinstance(e, _Interrupted)), None)
        if cause is not None:
            raise cause
    except BaseException:
        # Ctrl-C in this thread or a part that could not be sent: let running parts end,
        # start no new ones; the state file stays for the next run.
        stop.set()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    report.asset = api.complete(upload_id)
    state_file.unlink(missing_ok=True)
    return report


def _open_upload(
    api: StudioApi, master: Path, release_id: str, size: int, state_file: Path
) -> tuple[dict[str, Any], bool]:
    """The upload to continue (from the state file, if the API still has it open) or a new
    one, remembered in the state file before any part is sent."""
    try:
        state = json.loads(state_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        state = None
    identity = file_identity(master)
    if isinstance(state, dict) and state.get("upload_id"):
        try:
            upload = api.upload(str(state["upload_id"]))
        except ApiProblem as exc:
            if exc.status != 404:
                raise
        else:
            if upload["status"] == "open":
                if state.get("file") == identity and int(upload["size_bytes"]) == size:
                    return upload, True
                # Another file (or the same one changed) for this release: its parts would
                # mix two files, and the release takes one master at a time.
                api.send("DELETE", f"/v1/studio/uploads/{upload['id']}")
    upload = api.create_upload(release_id, master.name, size)
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(
        json.dumps({"upload_id": upload["id"], "release_id": release_id, "file": identity}),
        encoding="utf-8",
    )
    return upload, False
