"""One key-encryption key file for every role: made once by `pocketcinema create-kek`, never
made silently by a production process (which would wrap keys no other role can open)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from core.settings import Settings
from drm.envelope import LocalKek, make_wrapper
from tests.helpers import ROOT


def create_kek(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pocketcinema", "create-kek", str(path)],
        cwd=ROOT,
        env=os.environ | {"POCKETCINEMA_DATA_DIR": str(path.parent / "var")},
        capture_output=True,
        text=True,
        check=False,
    )


def production(tmp_path: Path, kek_file: Path) -> Settings:
    return Settings.model_validate(
        {
            "data_dir": tmp_path,
            "mode": "production",
            "secret_key": secrets.token_urlsafe(48),
            "playback_secret_key": secrets.token_urlsafe(48),
            "url_signing_key": secrets.token_urlsafe(48),
            "webhook_signing_key": secrets.token_urlsafe(48),
            "rate_limit_storage_url": "redis://127.0.0.1:6379/3",
            "payment_provider": "stripe",
            "stripe_secret_key": "sk_live_abc",
            "stripe_webhook_secret": "whsec_abc",
            "metrics_token": secrets.token_urlsafe(48),
            "kek_file": kek_file,
            "smtp_host": "smtp.example.com",
            "mail_from": "Pocket Cinema <no-reply@cinema.example.com>",
        }
    )


def test_create_kek_writes_a_private_file_once(tmp_path: Path) -> None:
    path = tmp_path / "secrets" / "kek.json"
    made = create_kek(path)
    assert made.returncode == 0, made.stderr
    assert path.stat().st_mode & 0o777 == 0o600
    first = path.read_bytes()
    again = create_kek(path)
    assert again.returncode == 2
    assert "exists" in again.stderr
    assert path.read_bytes() == first  # a key that may wrap content keys is never replaced


def test_every_role_reading_the_file_opens_what_another_wrapped(tmp_path: Path) -> None:
    path = tmp_path / "kek.json"
    assert create_kek(path).returncode == 0
    worker = make_wrapper(production(tmp_path / "worker", path))
    api = make_wrapper(production(tmp_path / "api", path))
    wrapped, ref = worker.wrap("key-1", b"k" * 16)
    assert api.unwrap("key-1", wrapped, ref) == b"k" * 16


def test_production_never_creates_a_missing_kek_file(tmp_path: Path) -> None:
    missing = tmp_path / "not-mounted" / "kek.json"
    wrapper = make_wrapper(production(tmp_path, missing))
    assert isinstance(wrapper, LocalKek)
    with pytest.raises(FileNotFoundError, match="create-kek"):
        wrapper.wrap("key-1", b"k" * 16)
    assert not missing.exists()
