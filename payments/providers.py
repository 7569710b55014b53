"""Payment provider adapters: Stripe for real money, a sandbox for the embedded default.

Both speak the same small protocol, and both deliver their events as Stripe-shaped JSON
signed the way Stripe signs webhooks (``t=<unix>,v1=<HMAC-SHA256(secret, "t.payload")>``),
so fulfilment has exactly one path: verify, store in the inbox, handle once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import stripe

from core.errors import AppError, NotFound
from core.settings import Mode, PaymentProvider, Settings, get_settings

log = logging.getLogger(__name__)


class PaymentProviderError(AppError):
    status = 502
    code = "payment_provider_error"
    title = "Payment provider error"


class WebhookRejected(AppError):
    status = 400
    code = "webhook_rejected"
    title = "Webhook rejected"


@dataclass(frozen=True)
class IntentRequest:
    amount_minor: int
    currency: str  # ISO 4217, upper case
    customer_id: str
    metadata: dict[str, str]
    idempotency_key: str
    description: str
    payment_method_types: list[str] | None = None  # None: automatic payment methods
    platform: str | None = None  # "ios" | "android": WeChat Pay needs to know the app


@dataclass(frozen=True)
class Intent:
    id: str
    client_secret: str
    amount_minor: int
    currency: str
    status: str


@dataclass(frozen=True)
class Refund:
    id: str
    amount_minor: int
    currency: str
    status: str


@dataclass(frozen=True)
class DisputeUpdate:
    id: str
    status: str  # Stripe's dispute status after the update, e.g. under_review


@dataclass(frozen=True)
class Fee:
    amount_minor: int
    currency: str


@dataclass(frozen=True)
class ProviderEvent:
    id: str
    type: str
    created_at: datetime
    object: dict[str, Any]
    payload: dict[str, Any] = field(repr=False)


class PaymentProviderAdapter(Protocol):
    name: str
    publishable_key: str

    def create_customer(self, *, user_id: str, email: str) -> str: ...

    def create_payment_intent(self, request: IntentRequest) -> Intent: ...

    def client_secret(self, intent_id: str) -> str: ...

    def create_ephemeral_key(self, customer_id: str) -> str: ...

    def refund(
        self,
        intent_id: str,
        *,
        amount_minor: int | None,
        idempotency_key: str,
        currency: str | None = None,
    ) -> Refund: ...

    def update_dispute(
        self, dispute_id: str, *, evidence: dict[str, str], submit: bool, idempotency_key: str
    ) -> DisputeUpdate: ...

    def list_refunds(self, charge_id: str) -> list[Refund]: ...

    def fee_for(self, intent: dict[str, Any]) -> Fee | None: ...

    def verify_event(self, payload: bytes, signature: str | None) -> ProviderEvent: ...


def sign_payload(payload: bytes, secret: str, timestamp: int | None = None) -> str:
    """A ``Stripe-Signature`` header value for ``payload`` (used by the sandbox and tests)."""
    t = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{t}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={t},v1={mac}"


def _verify(payload: bytes, signature: str | None, secret: str, tolerance: int) -> ProviderEvent:
    if not signature:
        raise WebhookRejected("missing Stripe-Signature header", code="webhook_signature_missing")
    try:
        text = payload.decode("utf-8")
        # The SDK checks the HMAC over the *raw* body and the timestamp tolerance; any
        # re-serialisation of the JSON before this point would break the signature. Only the
        # signature: the SDK's own event parsing fails with a crash on a signed body that is
        # valid JSON but not an object (an array), so we parse it ourselves below.
        stripe.WebhookSignature.verify_header(text, signature, secret, tolerance)
    except stripe.SignatureVerificationError as exc:
        raise WebhookRejected(
            f"signature verification failed: {exc.user_message or exc}",
            code="webhook_signature_invalid",
        ) from None
    except UnicodeDecodeError:
        raise WebhookRejected("body is not a JSON event", code="webhook_payload_invalid") from None
    try:
        data = json.loads(text)
        if not isinstance(data, dict):
            raise TypeError("not an object")
        return ProviderEvent(
            id=str(data["id"]),
            type=str(data["type"]),
            created_at=datetime.fromtimestamp(int(data["created"]), UTC),
            object=dict(data["data"]["object"]),
            payload=data,
        )
    except (KeyError, TypeError, ValueError, OverflowError, OSError, RecursionError):
        raise WebhookRejected(
            "body is not a JSON event with id, type, created and data.object",
            code="webhook_payload_invalid",
        ) from None


# --- Stripe ------------------------------------------------------------------------------


class StripeProvider:
    name = "stripe"

    def __init__(self, settings: Settings) -> None:
        secret = settings.stripe_secret_key.get_secret_value()
        if not secret:
            raise PaymentProviderError(
                "POCKETCINEMA_STRIPE_SECRET_KEY is not set", code="payment_provider_not_configured"
            )
        base: dict[str, str] = {}
        if settings.stripe_api_base:
            base = {"api": settings.stripe_api_base.rstrip("/")}
        self._client = stripe.StripeClient(
            secret,
            base_addresses=base,  # type: ignore[arg-type]
            max_network_retries=2,
        )
        self.publishable_key = settings.stripe_publishable_key
        self._webhook_secret = settings.stripe_webhook_secret.get_secret_value()
        self._tolerance = settings.stripe_webhook_tolerance_seconds
        self._mobile_version = settings.stripe_mobile_api_version

    def create_customer(self, *, user_id: str, email: str) -> str:
        # Stripe's idempotency makes two first purchases racing for one viewer share one
        # customer (within Stripe's 24 h key lifetime; the database constraint covers the rest).
        customer = self._call(
            self._client.v1.customers.create,
            {"email": email, "metadata": {"user_id": user_id}},
            {"idempotency_key": f"customer-{user_id}"},
        )
        return str(customer.id)

    def create_payment_intent(self, request: IntentRequest) -> Intent:
        params: dict[str, Any] = {
            "amount": request.amount_minor,
            "currency": request.currency.lower(),
            "customer": request.customer_id,
            "metadata": request.metadata,
            "description": request.description,
        }
        if request.payment_method_types:
            params["payment_method_types"] = request.payment_method_types
            if "wechat_pay" in request.payment_method_types and request.platform:
                params["payment_method_options"] = {"wechat_pay": {"client": request.platform}}
        else:
            # Cards plus Apple Pay / Google Pay (card wallets) and whatever the Dashboard
            # enables for this currency.
            params["automatic_payment_methods"] = {"enabled": True}
        intent = self._call(
            self._client.v1.payment_intents.create,
            params,
            {"idempotency_key": request.idempotency_key},
        )
        return Intent(
            id=str(intent.id),
            client_secret=str(intent.client_secret),
            amount_minor=int(intent.amount),
            currency=str(intent.currency).upper(),
            status=str(intent.status),
        )

    def client_secret(self, intent_id: str) -> str:
        intent = self._call(self._client.v1.payment_intents.retrieve, intent_id)
        return str(intent.client_secret)

    def create_ephemeral_key(self, customer_id: str) -> str:
        # The key must be minted for the API version the mobile SDK pins, not ours.
        key = self._call(
            self._client.v1.ephemeral_keys.create,
            {"customer": customer_id},
            {"stripe_version": self._mobile_version},
        )
        return str(key.secret)

    def refund(
        self,
        intent_id: str,
        *,
        amount_minor: int | None,
        idempotency_key: str,
        currency: str | None = None,
    ) -> Refund:
        # Stripe knows the charge's currency; ``currency`` is for providers that do not.
        params: dict[str, Any] = {"payment_intent": intent_id}
        if amount_minor is not None:
            params["amount"] = amount_minor
        refund = self._call(
            self._client.v1.refunds.create, params, {"idempotency_key": idempotency_key}
        )
        return _refund(refund)

    def update_dispute(
        self, dispute_id: str, *, evidence: dict[str, str], submit: bool, idempotency_key: str
    ) -> DisputeUpdate:
        dispute = self._call(
            self._client.v1.disputes.update,
            dispute_id,
            {"evidence": evidence, "submit": submit},
            {"idempotency_key": idempotency_key},
        )
        return DisputeUpdate(id=str(dispute.id), status=str(dispute.status))

    def list_refunds(self, charge_id: str) -> list[Refund]:
        page = self._call(self._client.v1.refunds.list, {"charge": charge_id, "limit": 100})
        return [_refund(r) for r in page.data]

    def fee_for(self, intent: dict[str, Any]) -> Fee | None:
        # The fee lives on the charge's balance transaction, in the settlement currency.
        charge_id = intent.get("latest_charge")
        if isinstance(charge_id, dict):  # expanded
            charge_id = charge_id.get("id")
        if not charge_id:
            return None
        page = self._call(
            self._client.v1.balance_transactions.list, {"source": charge_id, "limit": 1}
        )
        if not page.data:
            return None  # not settled into the balance yet; the fee stays unknown
        txn = page.data[0]
        return Fee(amount_minor=int(txn.fee), currency=str(txn.currency).upper())

    def verify_event(self, payload: bytes, signature: str | None) -> ProviderEvent:
        if not self._webhook_secret:
            raise PaymentProviderError(
                "POCKETCINEMA_STRIPE_WEBHOOK_SECRET is not set",
                code="payment_provider_not_configured",
            )
        return _verify(payload, signature, self._webhook_secret, self._tolerance)

    @staticmethod
    def _call(method: Any, *args: Any) -> Any:
        try:
            return method(*args)
        except stripe.IdempotencyError as exc:
            raise PaymentProviderError(
                f"Stripe refused a reused idempotency key: {exc.user_message}",
                code="payment_idempotency_conflict",
            ) from None
        except stripe.InvalidRequestError as exc:
            # A 4xx about the request itself (a refund larger than what is left, evidence
            # for a closed dispute): asking again gives the same answer, so it is final.
            raise PaymentProviderError(
                f"Stripe refused the request: {exc.user_message or exc}",
                code="payment_provider_refused",
            ) from None
        except stripe.StripeError as exc:
            log.warning("stripe call failed", extra={"error": str(exc)})
            raise PaymentProviderError(
                "the payment provider did not answer as expected; try again"
            ) from None


def _refund(obj: Any) -> Refund:
    return Refund(
        id=str(obj.id),
        amount_minor=int(obj.amount),
        currency=str(obj.currency).upper(),
        status=str(obj.status),
    )


# --- Sandbox -----------------------------------------------------------------------------

# Test cards of the sandbox (documented in docs/payments.md). Tokens follow Stripe's test
# PaymentMethod names where Stripe has an equivalent.
SANDBOX_CARDS: dict[str, str] = {
    "pm_card_visa": "success",
    "4242424242424242": "success",
    "pm_card_mastercard": "success",
    "5555555555554444": "success",
    "pm_card_chargeDeclined": "decline",
    "4000000000000002": "decline",
    "pm_card_chargeDeclinedInsufficientFunds": "insufficient_funds",
    "4000000000009995": "insufficient_funds",
    "pm_card_refund": "success_then_refund",
    "4000000000005126": "success_then_refund",
    "pm_card_createDispute": "success_then_dispute",
    "4000000000000259": "success_then_dispute",
}


def _digest(*parts: str, secret: str = "", size: int = 24) -> str:
    message = "\x1f".join(parts).encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()[:size]


@dataclass(frozen=True)
class SignedEvent:
    payload: bytes
    signature: str


class SandboxProvider:
    """No network, no storage of its own: ids are derived from their inputs, and confirming
    a payment produces the events Stripe would send, signed with the sandbox's secret."""

    name = "sandbox"
    publishable_key = "pk_sandbox_pocketcinema"

    def __init__(self, settings: Settings) -> None:
        if settings.mode is Mode.production:
            raise PaymentProviderError(
                "the sandbox payment provider is refused in production",
                code="payment_provider_not_configured",
            )
        base = settings.webhook_signing_key.get_secret_value()
        self._secret = "whsec_sandbox_" + _digest("sandbox-webhooks", secret=base, size=32)
        self._tolerance = settings.stripe_webhook_tolerance_seconds

    @property
    def webhook_secret(self) -> str:
        return self._secret

    def create_customer(self, *, user_id: str, email: str) -> str:
        return "cus_sb_" + _digest("customer", user_id)

    def create_payment_intent(self, request: IntentRequest) -> Intent:
        intent_id = "pi_sb_" + _digest("intent", request.idempotency_key)
        return Intent(
            id=intent_id,
            client_secret=self.client_secret(intent_id),
            amount_minor=request.amount_minor,
            currency=request.currency,
            status="requires_payment_method",
        )

    def client_secret(self, intent_id: str) -> str:
        return f"{intent_id}_secret_{_digest('secret', intent_id, secret=self._secret)}"

    def create_ephemeral_key(self, customer_id: str) -> str:
        return "ek_sb_" + _digest(
            "ephemeral", customer_id, str(time.time_ns()), secret=self._secret
        )

    def refund(
        self,
        intent_id: str,
        *,
        amount_minor: int | None,
        idempotency_key: str,
        currency: str | None = None,
    ) -> Refund:
        # The sandbox keeps no books, so it cannot look up what is left to refund: callers
        # say how much. The id comes from the idempotency key, as Stripe's replay would.
        if amount_minor is None or amount_minor < 1 or not currency:
            raise PaymentProviderError(
                "the sandbox needs the amount and currency of a refund",
                code="payment_provider_unsupported",
            )
        return Refund(
            id="re_sb_" + _digest("refund", intent_id, idempotency_key),
            amount_minor=amount_minor,
            currency=currency.upper(),
            status="succeeded",
        )

    def update_dispute(
        self, dispute_id: str, *, evidence: dict[str, str], submit: bool, idempotency_key: str
    ) -> DisputeUpdate:
        return DisputeUpdate(id=dispute_id, status="under_review" if submit else "needs_response")

    def refund_events(self, refund: Refund, intent_id: str) -> list[SignedEvent]:
        """What Stripe sends about a refund it made: ``refund.created``."""
        obj = {
            "id": refund.id,
            "object": "refund",
            "amount": refund.amount_minor,
            "currency": refund.currency.lower(),
            "charge": "ch_sb_" + _digest("charge", intent_id),
            "payment_intent": intent_id,
            "status": refund.status,
        }
        return [self._event("refund.created", obj, int(time.time()))]

    def dispute_events(
        self, update: DisputeUpdate, intent_id: str, evidence: dict[str, str], salt: str
    ) -> list[SignedEvent]:
        """``charge.dispute.updated`` carrying the evidence: the sandbox's record of it."""
        obj = {
            "id": update.id,
            "object": "dispute",
            "charge": "ch_sb_" + _digest("charge", intent_id),
            "payment_intent": intent_id,
            "status": update.status,
            "evidence": evidence,
        }
        return [self._event("charge.dispute.updated", obj, int(time.time()), salt)]

    def list_refunds(self, charge_id: str) -> list[Refund]:
        return []  # sandbox charge events always carry their refunds inline

    def fee_for(self, intent: dict[str, Any]) -> Fee | None:
        # The sandbox models Stripe's card fee: 2.9 % + 30 minor units, in the same currency.
        amount = int(intent.get("amount_received") or intent.get("amount") or 0)
        fee = (amount * 29 + 500) // 1000 + 30
        return Fee(amount_minor=fee, currency=str(intent.get("currency", "")).upper())

    def verify_event(self, payload: bytes, signature: str | None) -> ProviderEvent:
        return _verify(payload, signature, self._secret, self._tolerance)

    def confirm(
        self,
        *,
        intent_id: str,
        payment_method: str,
        amount_minor: int,
        currency: str,
        metadata: dict[str, str],
    ) -> list[SignedEvent]:
        """What Stripe would send after the app confirms with ``payment_method``."""
        outcome = SANDBOX_CARDS.get(payment_method.replace(" ", ""))
        if outcome is None:
            raise NotFound(
                "unknown sandbox test card; see docs/payments.md", code="sandbox_card_unknown"
            )
        now = int(time.time())
        charge_id = "ch_sb_" + _digest("charge", intent_id)
        intent: dict[str, Any] = {
            "id": intent_id,
            "object": "payment_intent",
            "amount": amount_minor,
            "amount_received": 0,
            "currency": currency.lower(),
            "metadata": metadata,
            "status": "requires_payment_method",
            "latest_charge": None,
        }
        if outcome in {"decline", "insufficient_funds"}:
            code = "card_declined"
            decline = "generic_decline" if outcome == "decline" else "insufficient_funds"
            intent["last_payment_error"] = {"code": code, "decline_code": decline}
            # One event per attempt: a second decline with another card is news.
            return [self._event("payment_intent.payment_failed", intent, now, payment_method)]
        intent |= {"status": "succeeded", "amount_received": amount_minor}
        intent["latest_charge"] = charge_id
        events = [self._event("payment_intent.succeeded", intent, now)]
        charge: dict[str, Any] = {
            "id": charge_id,
            "object": "charge",
            "amount": amount_minor,
            "currency": currency.lower(),
            "payment_intent": intent_id,
            "metadata": metadata,
        }
        if outcome == "success_then_refund":
            refund = {
                "id": "re_sb_" + _digest("refund", intent_id),
                "object": "refund",
                "amount": amount_minor,
                "currency": currency.lower(),
                "charge": charge_id,
                "payment_intent": intent_id,
                "status": "succeeded",
            }
            refunded = charge | {
                "refunded": True,
                "amount_refunded": amount_minor,
                "refunds": {"object": "list", "data": [refund]},
            }
            events.append(self._event("charge.refunded", refunded, now + 1))
        elif outcome == "success_then_dispute":
            dispute = {
                "id": "dp_sb_" + _digest("dispute", intent_id),
                "object": "dispute",
                "amount": amount_minor,
                "currency": currency.lower(),
                "charge": charge_id,
                "payment_intent": intent_id,
                "reason": "fraudulent",
                "status": "needs_response",
            }
            events.append(self._event("charge.dispute.created", dispute, now + 1))
            events.append(self._event("charge.dispute.funds_withdrawn", dispute, now + 2))
        return events

    def _event(self, type_: str, obj: dict[str, Any], created: int, *salt: str) -> SignedEvent:
        event_id = "evt_sb_" + _digest("event", type_, str(obj["id"]), *salt)
        body = {
            "id": event_id,
            "object": "event",
            "type": type_,
            "created": created,
            "livemode": False,
            "data": {"object": obj},
        }
        payload = json.dumps(body, separators=(",", ":")).encode()
        return SignedEvent(payload, sign_payload(payload, self._secret))


# --- Choosing one --------------------------------------------------------------------------


_stripe_clients: dict[int, tuple[Settings, StripeProvider]] = {}


def _stripe_provider(settings: Settings) -> StripeProvider:
    # One client (and its connection pool) per settings object; tests swap settings.
    cached = _stripe_clients.get(id(settings))
    if cached is None or cached[0] is not settings:
        cached = (settings, StripeProvider(settings))
        _stripe_clients.clear()
        _stripe_clients[id(settings)] = cached
    return cached[1]


def get_provider(name: str | None = None) -> PaymentProviderAdapter:
    """The configured provider, or the one named (a ticket keeps the provider it used)."""
    settings = get_settings()
    chosen = PaymentProvider(name) if name else settings.payment_provider
    if chosen is PaymentProvider.stripe:
        return _stripe_provider(settings)
    return SandboxProvider(settings)


def get_sandbox() -> SandboxProvider:
    settings = get_settings()
    if settings.payment_provider is not PaymentProvider.sandbox:
        raise NotFound("the sandbox payment provider is not enabled", code="sandbox_disabled")
    return SandboxProvider(settings)
