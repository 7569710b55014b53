"""App Store and Google Play: verifying what the stores sign, and the calls we make to them.

Nothing here trusts the app. A StoreKit 2 transaction is a JWS signed by Apple: Apple's own
library (``SignedDataVerifier``) checks its certificate chain up to the root certificates
named in the settings, its signature, bundle id, app id and environment. A Google Play
purchase token means nothing by itself: the Android Publisher API says what it bought, for
our package name only. Notifications are checked the same way: Apple's are signed JWS, and
Google's arrive through a Pub/Sub push whose OIDC token google-auth verifies against
Google's certificates.

What comes out is plain data (:class:`StorePurchase`, :class:`StoreNotice`); what a purchase
or a refund does to tickets and the ledger is ``tickets/store_purchases.py``.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

import pycountry

from core.errors import AppError
from core.money import minor_exponent
from core.settings import AppleEnvironment, Settings, Store, get_settings

log = logging.getLogger(__name__)

ANDROID_PUBLISHER_SCOPE = "https://www.googleapis.com/auth/androidpublisher"
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")


class StoreError(AppError):
    status = 422
    code = "store_transaction_invalid"
    title = "Store transaction refused"


class StoreConflict(AppError):
    status = 409
    code = "store_transaction_conflict"
    title = "Store transaction refused"


class StoreNotConfigured(AppError):
    status = 404
    code = "store_not_configured"
    title = "Store not configured"


class StoreUnavailable(AppError):
    status = 502
    code = "store_unavailable"
    title = "Store did not answer"


class NotificationRejected(AppError):
    status = 400
    code = "store_notification_invalid"
    title = "Store notification refused"


class NotificationUnauthenticated(AppError):
    status = 401
    code = "store_notification_unauthenticated"
    title = "Store notification not authenticated"


@dataclass(frozen=True)
class StorePurchase:
    """One purchase as the store reports it, after verification."""

    store: Store
    transaction_id: str  # Apple's transactionId, Google's orderId: the ticket's payment id
    product_id: str
    territory: str  # ISO 3166-1 alpha-2 of the storefront
    # What the store charged, in minor units; None when the store does not say (Google's
    # purchase resource carries no price: the configured price point is what it charged).
    price_minor: int | None
    currency: str | None
    purchased_at: datetime
    revoked: bool  # refunded or revoked already
    purchase_token: str | None = None  # Google: needed to consume the purchase
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class StoreNotice:
    """A store's notification about a purchase, after verification."""

    store: Store
    notice_id: str  # Apple's notificationUUID, Pub/Sub's messageId: the inbox key
    type: str  # REFUND, REVOKE, CONSUMPTION_REQUEST, … ; Google: voided, one_time_product, …
    transaction_id: str | None  # which purchase (Apple transactionId, Google orderId)
    signed_at: datetime
    payload: dict[str, Any] = field(repr=False)
    refunded_at: datetime | None = None  # when the money went back, if this says it did


def _fail(code: str, detail: str) -> StoreError:
    return StoreError(detail, code=code)


def _millis(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value) / 1000, UTC)


def territory_of_storefront(alpha3: str | None) -> str | None:
    """Apple names storefronts by ISO 3166-1 alpha-3 ("USA"); the catalog uses alpha-2."""
    if not alpha3:
        return None
    country = pycountry.countries.get(alpha_3=alpha3.upper())
    return str(country.alpha_2) if country is not None else None


def minor_from_milliunits(milliunits: int, currency: str) -> int | None:
    """Apple reports prices in milliunits of the currency (12.99 USD is 12990); None when the
    amount is not a whole number of our minor units (then it cannot match any price)."""
    minor = Decimal(milliunits).scaleb(minor_exponent(currency) - 3)
    return int(minor) if minor == minor.to_integral_value() else None


# --- App Store ------------------------------------------------------------------------------


class AppleStore:
    """StoreKit 2 transactions, App Store Server Notifications V2, and the App Store Server
    API's consumption information, through Apple's ``app-store-server-library``."""

    store = Store.app_store

    def __init__(self, settings: Settings) -> None:
        from appstoreserverlibrary.models.Environment import Environment
        from appstoreserverlibrary.signed_data_verifier import SignedDataVerifier

        if not settings.apple_bundle_id:
            raise StoreNotConfigured("the App Store is not configured here")
        if not settings.apple_root_certificates:
            raise StoreNotConfigured(
                "POCKETCINEMA_APPLE_ROOT_CERTIFICATES is not set", code="store_not_configured"
            )
        self._settings = settings
        self._environment = Environment(
            (settings.apple_environment or AppleEnvironment.sandbox).value
        )
        self._verifier = SignedDataVerifier(
            _root_certificates(tuple(settings.apple_root_certificates)),
            settings.apple_online_checks,
            self._environment,
            settings.apple_bundle_id,
            settings.apple_app_apple_id,
        )

    def verify_transaction(self, signed_transaction: str) -> StorePurchase:
        from appstoreserverlibrary.signed_data_verifier import VerificationException

        try:
            txn = self._verifier.verify_and_decode_signed_transaction(signed_transaction)
        except VerificationException as exc:
            raise _verification_error(exc, "transaction") from None
        if not txn.transactionId or not txn.productId or txn.purchaseDate is None:
            raise _fail("store_transaction_invalid", "the transaction lacks id, product or date")
        if txn.quantity not in (None, 1):
            raise _fail("store_quantity_unsupported", "a ticket is bought one at a time")
        currency = (txn.currency or "").upper() or None
        price = (
            minor_from_milliunits(int(txn.price), currency)
            if txn.price is not None and currency
            else None
        )
        territory = territory_of_storefront(txn.storefront)
        if territory is None:
            raise _fail("store_transaction_invalid", "the transaction names no known storefront")
        return StorePurchase(
            store=self.store,
            transaction_id=str(txn.transactionId),
            product_id=str(txn.productId),
            territory=territory,
            # A price that is not a whole number of minor units is reported as -1: it cannot
            # equal any configured price point, so the purchase is refused as a mismatch.
            price_minor=price if price is not None else (-1 if txn.price is not None else None),
            currency=currency,
            purchased_at=_millis(txn.purchaseDate),
            revoked=txn.revocationDate is not None,
        )

    def verify_notification(self, body: bytes) -> StoreNotice:
        """A notification's body is ``{"signedPayload": "<JWS>"}``; its transaction is a JWS
        of its own, verified too."""
        from appstoreserverlibrary.signed_data_verifier import VerificationException

        try:
            signed = json.loads(body)["signedPayload"]
            if not isinstance(signed, str):
                raise TypeError("signedPayload is not a string")
        except (ValueError, KeyError, TypeError):
            raise NotificationRejected(
                'the body is not {"signedPayload": "..."}', code="store_notification_invalid"
            ) from None
        try:
            note = self._verifier.verify_and_decode_notification(signed)
        except VerificationException as exc:
            raise _notification_error(exc) from None
        if not note.notificationUUID or note.signedDate is None:
            raise NotificationRejected("the notification lacks its id or date")
        signed_at = _millis(note.signedDate)
        _check_age(signed_at, self._settings)
        transaction_id: str | None = None
        refunded_at: datetime | None = None
        payload: dict[str, Any] = {
            "notificationType": note.rawNotificationType,
            "subtype": note.rawSubtype,
            "notificationUUID": note.notificationUUID,
            "signedDate": note.signedDate,
        }
        data = note.data
        if data is not None and data.signedTransactionInfo:
            try:
                txn = self._verifier.verify_and_decode_signed_transaction(
                    data.signedTransactionInfo
                )
            except VerificationException as exc:
                raise _notification_error(exc) from None
            transaction_id = str(txn.transactionId) if txn.transactionId else None
            if txn.revocationDate is not None:
                refunded_at = _millis(txn.revocationDate)
            payload |= {
                "transactionId": transaction_id,
                "productId": txn.productId,
                "revocationDate": txn.revocationDate,
                "revocationReason": txn.rawRevocationReason,
                "consumptionRequestReason": data.rawConsumptionRequestReason,
            }
        return StoreNotice(
            store=self.store,
            notice_id=str(note.notificationUUID),
            type=str(note.rawNotificationType or "UNKNOWN"),
            transaction_id=transaction_id,
            signed_at=signed_at,
            payload=payload,
            refunded_at=refunded_at,
        )

    def send_consumption(self, transaction_id: str, report: ConsumptionReport) -> None:
        """Answer a CONSUMPTION_REQUEST through the App Store Server API's
        "Send Consumption Information" call (PUT /inApps/v2/transactions/consumption/{id})."""
        from appstoreserverlibrary.api_client import APIException, AppStoreServerAPIClient
        from appstoreserverlibrary.models.ConsumptionRequest import ConsumptionRequest
        from appstoreserverlibrary.models.DeliveryStatus import DeliveryStatus
        from appstoreserverlibrary.models.RefundPreference import RefundPreference

        settings = self._settings
        key_file = settings.apple_api_private_key_file
        if not (key_file and settings.apple_api_issuer_id and settings.apple_api_key_id):
            raise StoreNotConfigured(
                "the App Store Server API key (issuer id, key id, key file) is not set"
            )
        client = AppStoreServerAPIClient(
            key_file.read_bytes(),
            settings.apple_api_key_id,
            settings.apple_api_issuer_id,
            settings.apple_bundle_id,
            self._environment,
        )
        if settings.apple_api_base_url:
            client._base_url = settings.apple_api_base_url.rstrip("/")
        request = ConsumptionRequest(
            customerConsented=True,
            sampleContentProvided=report.sample_content_provided,
            deliveryStatus=DeliveryStatus(report.delivery_status),
            consumptionPercentage=report.consumption_milli,
            refundPreference=RefundPreference(report.refund_preference),
        )
        try:
            client.send_consumption_information(transaction_id, request)
        except APIException as exc:
            status = int(exc.http_status_code)
            if status >= 500 or status == 429:
                raise StoreUnavailable(f"App Store Server API answered {status}") from None
            raise StoreError(
                f"App Store Server API refused the consumption information ({status}, "
                f"{exc.error_message or exc.raw_api_error})",
                code="store_request_refused",
            ) from None
        except OSError as exc:  # requests' connection errors are OSErrors
            raise StoreUnavailable(f"App Store Server API unreachable: {exc}") from None


@dataclass(frozen=True)
class ConsumptionReport:
    """What we tell Apple about a rental whose refund a viewer asked for."""

    delivery_status: str  # DELIVERED | UNDELIVERED_OTHER | …
    consumption_milli: int  # 0..100000: thousandths of a percent of the film watched
    refund_preference: str  # DECLINE | GRANT_FULL | GRANT_PRORATED
    sample_content_provided: bool  # a trailer was free to watch before buying


@lru_cache(maxsize=4)
def _root_certificates(paths: tuple[Path, ...]) -> list[bytes]:
    """Root certificates as DER, from DER or PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding

    roots: list[bytes] = []
    for path in paths:
        data = path.read_bytes()
        if b"-----BEGIN CERTIFICATE-----" in data:
            roots.extend(
                c.public_bytes(Encoding.DER) for c in x509.load_pem_x509_certificates(data)
            )
        else:
            roots.append(data)
    return roots


def _verification_error(exc: Any, what: str) -> AppError:
    status = getattr(exc.status, "name", str(exc.status))
    if status == "INVALID_APP_IDENTIFIER":
        return _fail("store_app_mismatch", f"the {what} belongs to another app")
    if status == "INVALID_ENVIRONMENT":
        return _fail("store_environment_mismatch", f"the {what} is from another environment")
    if status == "RETRYABLE_VERIFICATION_FAILURE":
        return StoreUnavailable("Apple's certificate status could not be checked; try again")
    return _fail("store_transaction_invalid", f"the {what}'s signature does not verify ({status})")


def _notification_error(exc: Any) -> AppError:
    inner = _verification_error(exc, "notification")
    if isinstance(inner, StoreUnavailable):
        return inner
    return NotificationRejected(
        inner.detail, code=inner.code.replace("transaction", "notification")
    )


def _check_age(signed_at: datetime, settings: Settings) -> None:
    age = datetime.now(UTC) - signed_at
    if age > timedelta(seconds=settings.store_notification_max_age_seconds):
        raise NotificationRejected(
            "the notification is older than the stores ever retry: a replay",
            code="store_notification_stale",
        )
    if age < -timedelta(minutes=5):
        raise NotificationRejected("the notification is dated in the future")


# --- Google Play ----------------------------------------------------------------------------


class GooglePlay:
    """Purchases through the Android Publisher API (v3) with Google's client library, and
    real-time developer notifications through a Pub/Sub push."""

    store = Store.google_play

    def __init__(self, settings: Settings) -> None:
        if not settings.google_play_package_name:
            raise StoreNotConfigured("Google Play is not configured here")
        self._settings = settings
        self.package_name = settings.google_play_package_name

    def _service(self) -> Any:
        settings = self._settings
        if settings.google_play_service_account_file is None:
            raise StoreNotConfigured("POCKETCINEMA_GOOGLE_PLAY_SERVICE_ACCOUNT_FILE is not set")
        return _android_publisher(
            str(settings.google_play_service_account_file),
            settings.google_play_api_base_url or "",
        )

    def verify_purchase(self, product_id: str, purchase_token: str) -> StorePurchase:
        """``purchases.products.get`` for our package: what the token bought, where, when."""
        try:
            found = (
                self._service()
                .purchases()
                .products()
                .get(packageName=self.package_name, productId=product_id, token=purchase_token)
                .execute(num_retries=1)
            )
        except Exception as exc:
            raise _google_error(exc, "purchase") from None
        if not isinstance(found, dict):
            raise StoreUnavailable("Google Play answered something that is not a purchase")
        if found.get("purchaseType") == 0 and not self._settings.google_play_test_purchases:
            raise _fail("store_environment_mismatch", "a test purchase (license tester)")
        state = found.get("purchaseState")
        if state == 2:
            raise StoreConflict(
                "the purchase is still pending payment", code="store_purchase_pending"
            )
        if found.get("quantity") not in (None, 1):
            raise _fail("store_quantity_unsupported", "a ticket is bought one at a time")
        order_id = found.get("orderId")
        territory = str(found.get("regionCode") or "").upper()
        if not order_id or len(territory) != 2 or found.get("purchaseTimeMillis") is None:
            raise _fail("store_transaction_invalid", "the purchase lacks order, region or time")
        return StorePurchase(
            store=self.store,
            transaction_id=str(order_id),
            product_id=str(found.get("productId") or product_id),
            territory=territory,
            price_minor=None,
            currency=None,
            purchased_at=_millis(found["purchaseTimeMillis"]),
            revoked=state == 1,
            purchase_token=purchase_token,
            raw=found,
        )

    def consume(self, product_id: str, purchase_token: str) -> None:
        """``purchases.products.consume``: a rental can be bought again, and a purchase
        neither acknowledged nor consumed within three days is refunded by Google."""
        try:
            self._service().purchases().products().consume(
                packageName=self.package_name, productId=product_id, token=purchase_token
            ).execute(num_retries=2)
        except Exception as exc:
            raise _google_error(exc, "purchase") from None

    def voided_purchases(self, since: datetime) -> list[StoreNotice]:
        """``purchases.voidedpurchases.list``: refunds and chargebacks since ``since``."""
        notices: list[StoreNotice] = []
        page_token: str | None = None
        try:
            while True:
                params: dict[str, Any] = {
                    "packageName": self.package_name,
                    "startTime": str(int(since.timestamp() * 1000)),
                    "maxResults": 1000,
                }
                if page_token:
                    params["token"] = page_token
                page = self._service().purchases().voidedpurchases().list(**params).execute()
                for voided in page.get("voidedPurchases", []):
                    order_id = voided.get("orderId")
                    if not order_id:
                        continue
                    at = _millis(voided.get("voidedTimeMillis") or 0)
                    notices.append(
                        StoreNotice(
                            store=self.store,
                            notice_id=f"voided-{order_id}",
                            type="voided",
                            transaction_id=str(order_id),
                            signed_at=at,
                            payload=dict(voided),
                            refunded_at=at,
                        )
                    )
                page_token = (page.get("tokenPagination") or {}).get("nextPageToken")
                if not page_token:
                    return notices
        except StoreError:
            raise
        except Exception as exc:
            raise _google_error(exc, "voided purchases list") from None

    def verify_push(self, authorization: str | None, body: bytes) -> StoreNotice:
        """A Pub/Sub push of a real-time developer notification: the OIDC token in the
        Authorization header first (google-auth, against Google's certificates), then the
        envelope, then our package name."""
        settings = self._settings
        if not authorization or not authorization.startswith("Bearer "):
            raise _unauthenticated("the push carries no bearer token")
        claims = _verify_pubsub_token(
            authorization.removeprefix("Bearer ").strip(),
            settings.google_pubsub_audience,
            settings.google_pubsub_certs_url,
        )
        expected_sender = settings.google_pubsub_service_account
        if expected_sender and (
            claims.get("email") != expected_sender or claims.get("email_verified") is not True
        ):
            raise _unauthenticated("the push was not sent by the configured service account")
        try:
            envelope = json.loads(body)
            message = envelope["message"]
            message_id = str(message.get("messageId") or message["message_id"])
            data = json.loads(base64.b64decode(message["data"], validate=True))
            if not isinstance(data, dict):
                raise TypeError("not an object")
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise NotificationRejected(
                "the body is not a Pub/Sub push of a developer notification"
            ) from None
        if data.get("packageName") != self.package_name:
            raise NotificationRejected(
                "the notification is about another app", code="store_app_mismatch"
            )
        try:
            signed_at = _millis(data["eventTimeMillis"])
        except (KeyError, ValueError, TypeError, OverflowError):
            raise NotificationRejected("the notification has no event time") from None
        _check_age(signed_at, settings)
        voided = data.get("voidedPurchaseNotification")
        if isinstance(voided, dict):
            order_id = voided.get("orderId")
            return StoreNotice(
                store=self.store,
                notice_id=message_id,
                type="voided",
                transaction_id=str(order_id) if order_id else None,
                signed_at=signed_at,
                payload=data,
                refunded_at=signed_at,
            )
        kind = next(
            (
                k
                for k in (
                    "oneTimeProductNotification",
                    "subscriptionNotification",
                    "testNotification",
                )
                if k in data
            ),
            "unknown",
        )
        return StoreNotice(
            store=self.store,
            notice_id=message_id,
            type=kind,
            transaction_id=None,
            signed_at=signed_at,
            payload=data,
        )


def _unauthenticated(detail: str) -> NotificationUnauthenticated:
    return NotificationUnauthenticated(detail)


def _verify_pubsub_token(token: str, audience: str, certs_url: str) -> dict[str, Any]:
    import google.auth.exceptions
    import google.auth.transport.requests
    from google.oauth2 import id_token

    if not audience:
        raise StoreNotConfigured("POCKETCINEMA_GOOGLE_PUBSUB_AUDIENCE is not set")
    try:
        claims = id_token.verify_token(
            token,
            google.auth.transport.requests.Request(),
            audience=audience,
            certs_url=certs_url,
        )
    except (ValueError, google.auth.exceptions.GoogleAuthError) as exc:
        raise _unauthenticated(f"the push token does not verify: {exc}") from None
    if not isinstance(claims, dict) or claims.get("iss") not in GOOGLE_ISSUERS:
        raise _unauthenticated("the push token was not issued by Google")
    return claims


_per_thread = threading.local()


def _android_publisher(service_account_file: str, api_base_url: str) -> Any:
    """One client per thread, credentials file and endpoint: httplib2, under Google's client,
    is not thread-safe, and API routes run in a thread pool. Building one parses the
    discovery document shipped with the library (no network); its token is cached until it
    expires."""
    from google.oauth2 import service_account
    from googleapiclient.discovery import build

    clients: dict[tuple[str, str], Any] = _per_thread.__dict__.setdefault("clients", {})
    key = (service_account_file, api_base_url)
    if key not in clients:
        credentials = service_account.Credentials.from_service_account_file(  # type: ignore[no-untyped-call]
            service_account_file, scopes=[ANDROID_PUBLISHER_SCOPE]
        )
        options = {"api_endpoint": api_base_url} if api_base_url else None
        clients[key] = build(
            "androidpublisher",
            "v3",
            credentials=credentials,
            client_options=options,
            cache_discovery=False,
            static_discovery=True,
        )
    return clients[key]


def _google_error(exc: Exception, what: str) -> AppError:
    from googleapiclient.errors import HttpError

    if isinstance(exc, HttpError):
        status = int(exc.resp.status)
        if status in (400, 404, 410):
            # An unknown, expired or foreign token (another package's purchase is "not found"
            # for ours).
            return _fail("store_transaction_invalid", f"Google Play does not know this {what}")
        if status in (401, 403):
            return StoreUnavailable(f"Google Play refused our credentials ({status})")
        return StoreUnavailable(f"Google Play answered {status}")
    log.warning("google play call failed", extra={"error": str(exc)})
    return StoreUnavailable(f"Google Play unreachable: {type(exc).__name__}")


# --- Choosing one ---------------------------------------------------------------------------


_apple: dict[int, tuple[Settings, AppleStore]] = {}


def apple_store() -> AppleStore:
    """The App Store for the current settings; one verifier per settings object, so its cache
    of verified certificate chains (kept when online checks are on) lasts."""
    settings = get_settings()
    cached = _apple.get(id(settings))
    if cached is None or cached[0] is not settings:
        cached = (settings, AppleStore(settings))
        _apple.clear()
        _apple[id(settings)] = cached
    return cached[1]


def google_play() -> GooglePlay:
    return GooglePlay(get_settings())


def commission_percent(store: Store, settings: Settings | None = None) -> Decimal:
    rates = (settings or get_settings()).store_commission_percent
    return Decimal(str(rates[store.value]))
