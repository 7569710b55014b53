"""Payment provider webhooks. The body is read raw: the signature covers the exact bytes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request

from api.contract import WEBHOOK_SIGNATURE, problems
from api.deps import DbSession
from api.webhook_schemas import (
    WebhookReceipt,
)
from core.errors import NotFound
from core.settings import get_settings
from payments.providers import get_sandbox
from tickets import fulfilment

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])


async def _raw_body(request: Request) -> bytes:
    # The size cap (max_webhook_body_bytes) was enforced while the body arrived, before
    # this point (api/limits.py): a huge event is refused without being held in memory.
    return await request.body()


# The body as bytes, read in an async dependency so that the route itself stays sync: the
# route does blocking database work (it may wait on another delivery's row lock), which
# must run in the thread pool, never on the event loop.
RawBody = Annotated[bytes, Depends(_raw_body)]


@router.post(
    "/stripe",
    summary="Stripe webhook endpoint (signed events; configure in the Stripe Dashboard)",
    response_model=WebhookReceipt,
    operation_id="webhooks_stripe",
    responses=problems(
        (404, "payment_provider_not_configured"),
        "webhook_signature_missing",
        "webhook_signature_invalid",
        "webhook_payload_invalid",
    ),
    openapi_extra={"security": WEBHOOK_SIGNATURE},
)
def stripe_webhook(
    session: DbSession,
    body: RawBody,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> WebhookReceipt:
    """Each event is verified against the raw body, stored once by its id and handled in the same transaction; a repeat answers 200 with its first outcome."""
    settings = get_settings()
    if not (
        settings.stripe_secret_key.get_secret_value()
        and settings.stripe_webhook_secret.get_secret_value()
    ):
        # Like the sandbox route below: a provider this deployment does not use has no
        # endpoint (a 404, not a server error Stripe would see as our outage).
        raise NotFound("Stripe is not configured here", code="payment_provider_not_configured")
    return _receive(session, "stripe", body, stripe_signature)


@router.post(
    "/sandbox",
    summary="Sandbox webhook endpoint (events signed with the sandbox's secret)",
    response_model=WebhookReceipt,
    operation_id="webhooks_sandbox",
    responses=problems(
        (502, "payment_provider_not_configured"),
        "sandbox_disabled",
        "webhook_signature_missing",
        "webhook_signature_invalid",
        "webhook_payload_invalid",
    ),
    openapi_extra={"security": WEBHOOK_SIGNATURE},
)
def sandbox_webhook(
    session: DbSession,
    body: RawBody,
    stripe_signature: Annotated[str | None, Header(alias="Stripe-Signature")] = None,
) -> WebhookReceipt:
    """The sandbox provider's events, verified, stored and handled like Stripe's."""
    get_sandbox()  # 404 unless the sandbox is the configured provider
    return _receive(session, "sandbox", body, stripe_signature)


def _receive(
    session: DbSession, provider: str, body: bytes, signature: str | None
) -> WebhookReceipt:
    receipt = fulfilment.receive(session, provider, body, signature)
    return WebhookReceipt(event_id=receipt.event_id, type=receipt.type, status=receipt.status)
