from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from core.settings import DEV_SECRET, AppleEnvironment, Mode, Settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests describe the defaults, so the suite's own POCKETCINEMA_* must not leak in."""
    import os

    for name in list(os.environ):
        if name.startswith("POCKETCINEMA_"):
            monkeypatch.delenv(name)


def test_embedded_defaults_need_no_configuration(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path)
    assert settings.mode is Mode.development
    assert settings.database_url == f"sqlite:///{tmp_path / 'pocketcinema.db'}"
    assert settings.broker_url == f"sqla+sqlite:///{tmp_path / 'broker.db'}"
    assert settings.media_dir == tmp_path / "media"
    assert Path(settings.ffmpeg_path).is_file(), "FFmpeg comes with the Python install"


@pytest.mark.parametrize(
    "weak",
    [
        "x" * 64,  # long, but one symbol
        "ab" * 40,  # long, but a pattern
        "correct-horse",  # short
        secrets.token_urlsafe(24),  # random, but 192 bits
        "0123456789abcdef" * 4,  # hex digits, in order
    ],
)
def test_production_refuses_low_entropy_secrets(tmp_path: Path, weak: str) -> None:
    with pytest.raises(ValidationError, match="POCKETCINEMA_URL_SIGNING_KEY"):
        Settings(
            data_dir=tmp_path,
            mode="production",
            secret_key=secrets.token_urlsafe(48),
            playback_secret_key=secrets.token_urlsafe(48),
            url_signing_key=weak,
            webhook_signing_key=secrets.token_urlsafe(48),
            payment_provider="stripe",
            stripe_secret_key="sk_live_abc",
            stripe_webhook_secret="whsec_abc",
            rate_limit_storage_url="redis://127.0.0.1:6379/3",
        )


def test_production_refuses_one_secret_for_two_purposes(tmp_path: Path) -> None:
    shared = secrets.token_urlsafe(48)
    with pytest.raises(ValidationError) as refused:
        Settings(
            data_dir=tmp_path,
            mode="production",
            secret_key=shared,
            playback_secret_key=shared,
            url_signing_key=secrets.token_urlsafe(48),
            webhook_signing_key=secrets.token_urlsafe(48),
            payment_provider="stripe",
            stripe_secret_key="sk_live_abc",
            stripe_webhook_secret="whsec_abc",
        )
    message = str(refused.value)
    assert "POCKETCINEMA_PLAYBACK_SECRET_KEY (the same value as POCKETCINEMA_SECRET_KEY" in message
    assert "POCKETCINEMA_RATE_LIMIT_STORAGE_URL" in message  # memory is one process only


def test_production_refuses_development_secrets_and_names_them(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(data_dir=tmp_path, mode="production")
    message = str(refused.value)
    for name in ("SECRET_KEY", "PLAYBACK_SECRET_KEY", "URL_SIGNING_KEY", "WEBHOOK_SIGNING_KEY"):
        assert f"POCKETCINEMA_{name}" in message
    assert "POCKETCINEMA_PAYMENT_PROVIDER" in message


def test_production_starts_with_real_secrets(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        mode="production",
        secret_key=secrets.token_urlsafe(48),
        playback_secret_key=secrets.token_urlsafe(48),
        url_signing_key=secrets.token_hex(32),
        webhook_signing_key=secrets.token_urlsafe(32),
        payment_provider="stripe",
        stripe_secret_key="sk_live_abc",
        stripe_webhook_secret="whsec_abc",
        kek_file=tmp_path / "kek.json",
        metrics_token="m" * 40,
        rate_limit_storage_url="redis://127.0.0.1:6379/3",
        smtp_host="smtp.example.com",
        smtp_username="cinema",
        smtp_password="relay password",
        mail_from="Pocket Cinema <no-reply@cinema.example.com>",
    )
    assert settings.mode is Mode.production
    assert not settings.secret_key.get_secret_value().startswith(DEV_SECRET)


def refusal(tmp_path: Path, **values: object) -> str:
    with pytest.raises(ValidationError) as refused:
        Settings(data_dir=tmp_path, mode="production", **values)  # type: ignore[arg-type]
    return " ".join(str(e["msg"]) for e in refused.value.errors())


def test_production_refuses_a_per_container_kek_and_open_metrics(tmp_path: Path) -> None:
    message = refusal(tmp_path)
    assert "POCKETCINEMA_KEK_FILE" in message
    assert "POCKETCINEMA_METRICS_TOKEN" in message
    # A separate metrics port is the other accepted answer; a short token is not.
    assert "POCKETCINEMA_METRICS_TOKEN (32+" in refusal(tmp_path, metrics_token="short")
    assert "POCKETCINEMA_METRICS_TOKEN" not in refusal(tmp_path, metrics_port=9100)
    assert "POCKETCINEMA_KEK_FILE" not in refusal(tmp_path, key_encryption="kms", kms_key_id="k")


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("log_level", "LOUD"),
        ("trusted_proxies", "10.0.0.0/8,not-an-ip"),
        ("storage_backend", "ftp"),
    ],
)
def test_bad_values_are_refused(tmp_path: Path, field: str, value: str) -> None:
    overrides: dict[str, Any] = {field: value}
    with pytest.raises(ValidationError) as refused:
        Settings(data_dir=tmp_path, **overrides)
    assert field in str(refused.value)


def test_trusted_proxies_from_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("POCKETCINEMA_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1")
    assert Settings(data_dir=tmp_path).trusted_proxies == ["10.0.0.0/8", "192.168.1.1"]


def test_development_trusts_loopback_proxies_only_by_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("POCKETCINEMA_TRUSTED_PROXIES", raising=False)
    assert Settings(data_dir=tmp_path, mode="development").trusted_proxies == [
        "127.0.0.1/32",
        "::1/128",
    ]
    assert Settings(data_dir=tmp_path, mode="test").trusted_proxies == []
    # An explicit setting wins, even an empty one.
    monkeypatch.setenv("POCKETCINEMA_TRUSTED_PROXIES", "")
    assert Settings(data_dir=tmp_path, mode="development").trusted_proxies == []


@pytest.mark.parametrize(
    "origin", ["*", "watch.example.com", "https://watch.example.com/app", "ftp://x.example"]
)
def test_cors_origins_must_be_origins(tmp_path: Path, origin: str) -> None:
    with pytest.raises(ValidationError, match="is not an origin"):
        Settings(data_dir=tmp_path, cors_allowed_origins=origin)


def test_production_refuses_mail_that_reaches_nobody_or_leaks(tmp_path: Path) -> None:
    message = refusal(tmp_path)
    assert "POCKETCINEMA_SMTP_HOST" in message  # a directory of .eml files reaches nobody
    assert "POCKETCINEMA_MAIL_FROM" in message
    plain = refusal(tmp_path, smtp_host="smtp.example.com", smtp_security="none")
    assert "POCKETCINEMA_SMTP_SECURITY" in plain  # a password in clear over the network
    assert "POCKETCINEMA_SMTP_SECURITY" not in refusal(
        tmp_path, smtp_host="127.0.0.1", smtp_security="none"
    )
    assert "POCKETCINEMA_SMTP_PASSWORD" in refusal(
        tmp_path, smtp_host="smtp.example.com", smtp_username="cinema"
    )
    assert Settings(data_dir=tmp_path).mail_dir == tmp_path / "mail"


def test_production_refuses_a_store_switched_on_without_its_settings(tmp_path: Path) -> None:
    message = refusal(
        tmp_path, apple_bundle_id="dev.pocketcinema.app", google_play_package_name="dev.pc"
    )
    for name in (
        "APPLE_ENVIRONMENT",
        "APPLE_APP_APPLE_ID",
        "APPLE_ROOT_CERTIFICATES",
        "APPLE_API_ISSUER_ID",
        "APPLE_API_KEY_ID",
        "APPLE_API_PRIVATE_KEY_FILE",
        "GOOGLE_PLAY_SERVICE_ACCOUNT_FILE",
        "GOOGLE_PUBSUB_AUDIENCE",
    ):
        assert f"POCKETCINEMA_{name}" in message
    # A store that is off needs nothing; development sells in Apple's sandbox by default.
    assert "APPLE" not in refusal(tmp_path)
    assert Settings(data_dir=tmp_path).apple_environment is AppleEnvironment.sandbox


def test_store_commissions_are_percentages_of_known_stores(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, store_commission_percent={"app_store": 15})
    assert settings.store_commission_percent == {"app_store": 15.0, "google_play": 15.0}
    for bad in ({"amazon": 20}, {"app_store": 100}, {"google_play": -1}):
        with pytest.raises(ValidationError):
            Settings(data_dir=tmp_path, store_commission_percent=bad)
