"""The studio's side of Pocket Cinema's public HTTP API, as any client would use it: httpx,
a bearer token, problem+json errors. No server package is imported here, so the studio
commands (``pocketcinema upload``, ``pocketcinema releases watch``) work from any machine
that can reach the API.

Credentials: ``POCKETCINEMA_TOKEN`` (an access token, used as is), else what
``pocketcinema login`` stored (access and refresh token, in the user's config directory,
readable by the owner only). A stored sign-in is refreshed when the API answers 401.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx

TOKEN_ENV = "POCKETCINEMA_TOKEN"  # noqa: S105 - the variable's name, not a token
API_URL_ENV = "POCKETCINEMA_API_URL"
DEFAULT_API_URL = "http://127.0.0.1:8000"


class ApiProblem(Exception):
    """A refusal from the API (problem+json) or from the store a part was sent to."""

    def __init__(self, status: int, code: str, detail: str) -> None:
        super().__init__(f"{detail} ({code}, HTTP {status})")
        self.status = status
        self.code = code
        self.detail = detail

    @classmethod
    def of(cls, response: httpx.Response) -> ApiProblem:
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict):
            return cls(
                response.status_code,
                str(body.get("code") or "http_error"),
                str(body.get("detail") or body.get("title") or response.reason_phrase),
            )
        # S3 answers XML; its error code is enough to act on (e.g. BadDigest).
        text = response.text
        code = text.split("<Code>", 1)[1].split("</Code>", 1)[0] if "<Code>" in text else ""
        return cls(response.status_code, code or "http_error", text[:300] or response.reason_phrase)


@dataclass
class Credentials:
    access_token: str
    refresh_token: str | None = None
    device_id: str | None = None


def config_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "pocketcinema"


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "pocketcinema"


class CredentialStore:
    """The sign-in ``pocketcinema login`` keeps, one file per API URL."""

    def __init__(self, api_url: str, root: Path | None = None) -> None:
        safe = "".join(c if c.isalnum() else "_" for c in api_url.rstrip("/"))
        self.path = (root or config_dir()) / "credentials" / f"{safe}.json"

    def load(self) -> Credentials | None:
        try:
            return Credentials(**json.loads(self.path.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None

    def save(self, credentials: Credentials) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        temp = self.path.with_suffix(".tmp")
        # Created owner-only before the token is written: no moment it is readable by others.
        fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(asdict(credentials), fh)
        temp.replace(self.path)

    def clear(self) -> None:
        self.path.unlink(missing_ok=True)


def api_url(option: str | None) -> str:
    return (option or os.environ.get(API_URL_ENV) or DEFAULT_API_URL).rstrip("/")


class StudioApi:
    """A thread-safe client of the studio routes (parts are sent from several threads)."""

    def __init__(
        self,
        base_url: str,
        credentials: Credentials,
        *,
        store: CredentialStore | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._credentials = credentials
        self._store = store
        self._lock = threading.Lock()
        self._http = httpx.Client(timeout=timeout, follow_redirects=False)

    @classmethod
    def from_environment(cls, base_url: str | None) -> StudioApi:
        """The API at ``base_url`` (option, else ``POCKETCINEMA_API_URL``) with the token of
        ``POCKETCINEMA_TOKEN``, else the stored sign-in."""
        url = api_url(base_url)
        token = os.environ.get(TOKEN_ENV)
        if token:
            return cls(url, Credentials(token))
        store = CredentialStore(url)
        stored = store.load()
        if stored is None:
            raise ApiProblem(
                401,
                "not_signed_in",
                f"not signed in to {url}: run `pocketcinema login` or set {TOKEN_ENV}",
            )
        return cls(url, stored, store=store)

    @staticmethod
    def login(
        base_url: str, email: str, password: str, device_id: str, timeout: float = 30.0
    ) -> Credentials:
        response = httpx.post(
            f"{api_url(base_url)}/v1/auth/login",
            json={"email": email, "password": password, "device_id": device_id},
            headers={"X-Device-Id": device_id},
            timeout=timeout,
        )
        if response.status_code != 200:
            raise ApiProblem.of(response)
        body = response.json()
        return Credentials(body["access_token"], body.get("refresh_token"), device_id)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StudioApi:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # ------------------------------------------------------------------------ plumbing
    def _auth(self) -> dict[str, str]:
        with self._lock:
            return {"Authorization": f"Bearer {self._credentials.access_token}"}

    def _refresh(self, stale: str) -> bool:
        """New tokens for the stored sign-in; False when there is nothing to refresh with."""
        with self._lock:
            current = self._credentials
            if current.access_token != stale:
                return True  # another thread refreshed already
            if not current.refresh_token:
                return False
            headers = {"X-Device-Id": current.device_id} if current.device_id else {}
            response = self._http.post(
                f"{self.base_url}/v1/auth/refresh",
                json={"refresh_token": current.refresh_token, "device_id": current.device_id},
                headers=headers,
            )
            if response.status_code != 200:
                return False
            body = response.json()
            self._credentials = Credentials(
                body["access_token"], body.get("refresh_token"), current.device_id
            )
            if self._store is not None:
                self._store.save(self._credentials)
            return True

    def send(
        self,
        method: str,
        url: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        """A request to the API (a path, or one of its own absolute URLs, with the token) or
        to a presigned store URL (without it). Raises :class:`ApiProblem` on a refusal."""
        ours = not url.startswith(("http://", "https://")) or url.startswith(self.base_url + "/")
        full = url if url.startswith(("http://", "https://")) else self.base_url + url
        for attempt in range(2):
            sent_headers = dict(headers or {})
            if ours:
                sent_headers |= self._auth()
            response = self._http.request(
                method, full, json=json_body, content=content, headers=sent_headers
            )
            if (
                ours
                and response.status_code == 401
                and attempt == 0
                and self._refresh(sent_headers["Authorization"].removeprefix("Bearer "))
            ):
                continue
            if response.status_code >= 400:
                raise ApiProblem.of(response)
            return response
        raise AssertionError("unreachable")

    def json(self, method: str, path: str, body: Any = None) -> Any:
        return self.send(method, path, json_body=body).json()

    # --------------------------------------------------------------------- the routes
    def create_upload(self, release_id: str, filename: str, size: int) -> dict[str, Any]:
        body = {"kind": "master", "filename": filename, "size_bytes": size}
        result: dict[str, Any] = self.json(
            "POST", f"/v1/studio/releases/{release_id}/uploads", body
        )
        return result

    def upload(self, upload_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.json("GET", f"/v1/studio/uploads/{upload_id}")
        return result

    def part_target(self, upload_id: str, number: int, checksum: str) -> dict[str, Any]:
        body = {"parts": [{"number": number, "checksum_sha256": checksum}]}
        targets = self.json("POST", f"/v1/studio/uploads/{upload_id}/part-urls", body)
        target: dict[str, Any] = targets[0]
        return target

    def complete(self, upload_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.json("POST", f"/v1/studio/uploads/{upload_id}/complete")
        return result

    def release(self, release_id: str) -> dict[str, Any]:
        result: dict[str, Any] = self.json("GET", f"/v1/studio/releases/{release_id}")
        return result
