"""Viewer routes: buying a ticket, and the sandbox's stand-in for the PaymentSheet."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Response
from pydantic import BaseModel, ConfigDict, Field

from accounts.models import Role
from accounts.service import Principal
from api.contract import problems
from api.deps import DbSession, RequestCountry, require_role
from api.ticket_schemas import TicketRead, ticket_read
from core.db import utcnow
from tickets import fulfilment
from tickets import service as tickets

router = APIRouter(tags=["purchases"])

Viewer = Annotated[Principal, require_role(Role.viewer)]


class PurchaseCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title_id": "7d0c5a4e2b8f4a61b3f09c2d8e1a6b55",
                    "expected_amount_minor": 1299,
                    "expected_currency": "USD",
                    "platform": "ios",
                }
            ]
        },
    )

    title_id: str = Field(min_length=1, max_length=32, description="The title to buy")
    expected_amount_minor: int | None = Field(
        default=None,
        ge=1,
        description="The price the app showed, in minor units; refused with price_changed "
        "if it no longer holds",
    )
    expected_currency: str | None = Field(
        default=None, pattern=r"^[A-Z]{3}$", description="ISO 4217 currency of that price"
    )
    platform: Literal["ios", "android"] | None = Field(
        default=None, description="The app's platform (WeChat Pay needs it)"
    )


class PaymentSheetRead(BaseModel):
    """What Stripe's mobile PaymentSheet needs, and the ticket it pays for."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "provider": "stripe",
                    "payment_intent_id": "pi_3OqX2aLkdIwHu7ix0",
                    "client_secret": "pi_3OqX2aLkdIwHu7ix0_secret_Yz",
                    "customer_id": "cus_PfX8aZ1",
                    "ephemeral_key_secret": "ek_test_YWNjdF8x",
                    "publishable_key": "pk_test_51HxYz",
                    "amount_minor": 1299,
                    "currency": "USD",
                    "ticket": {
                        "id": "3f2b9c1d6e7a4b8c9d0e1f2a3b4c5d6e",
                        "title_id": "7d0c5a4e2b8f4a61b3f09c2d8e1a6b55",
                        "state": "pending",
                        "territory": "US",
                        "price_minor": 1299,
                        "currency": "USD",
                        "purchased_at": "2026-03-01T19:02:11Z",
                        "paid_at": None,
                        "start_by": None,
                        "first_played_at": None,
                        "watch_until": None,
                        "watch_hours": 48,
                        "remaining_seconds": None,
                        "failure_code": None,
                        "resume_position_seconds": 0.0,
                    },
                }
            ]
        }
    )

    provider: str = Field(description="stripe or sandbox")
    payment_intent_id: str
    client_secret: str = Field(description="PaymentIntent client secret for the PaymentSheet")
    customer_id: str
    ephemeral_key_secret: str = Field(description="Customer ephemeral key for the PaymentSheet")
    publishable_key: str
    amount_minor: int = Field(description="Price in minor units of currency")
    currency: str = Field(description="ISO 4217")
    ticket: TicketRead


@router.post(
    "/v1/purchases",
    summary="Buy a ticket: start a payment for a title in the caller's country",
    response_model=PaymentSheetRead,
    status_code=201,
    responses={
        **problems(
            "country_unknown",
            "not_licensed_in_country",
            "outside_licence_window",
            "idempotency_key_invalid",
            "idempotency_key_reused",
            "payment_provider_error",
            "payment_provider_refused",
            "payment_idempotency_conflict",
            "payment_provider_unsupported",
            (502, "payment_provider_not_configured"),
            "platform_invalid",
            "price_changed",
            "purchase_in_progress",
            (409, "release_not_ready"),
            "title_not_found",
            "viewer_not_found",
        ),
        200: {
            "model": PaymentSheetRead,
            "description": "A repeat of an earlier request: the same payment",
        },
    },
    operation_id="purchases_create",
)
def create_purchase(
    session: DbSession,
    viewer: Viewer,
    country: RequestCountry,
    body: PurchaseCreate,
    response: Response,
    idempotency_key: Annotated[
        str,
        Header(
            alias="Idempotency-Key",
            min_length=8,
            max_length=200,
            pattern=r"^[A-Za-z0-9._:-]+$",
            description="A fresh UUID per purchase attempt; repeats return the same payment",
        ),
    ],
) -> PaymentSheetRead:
    """Creates a pending ticket at the price of the caller's country and a payment with the provider, and answers what the PaymentSheet needs (201). The `Idempotency-Key` makes retries safe: a repeat answers the same payment (200), never a second charge. The ticket turns active when the provider's webhook confirms the payment."""
    sheet = tickets.purchase(
        session,
        viewer_id=viewer.user_id,
        country=country,
        idempotency_key=idempotency_key,
        request=tickets.PurchaseRequest(
            title_id=body.title_id,
            expected_amount_minor=body.expected_amount_minor,
            expected_currency=body.expected_currency,
            platform=body.platform,
        ),
    )
    if sheet.replayed:
        response.status_code = 200
    return PaymentSheetRead(
        provider=sheet.provider,
        payment_intent_id=sheet.payment_intent_id,
        client_secret=sheet.client_secret,
        customer_id=sheet.customer_id,
        ephemeral_key_secret=sheet.ephemeral_key_secret,
        publishable_key=sheet.publishable_key,
        amount_minor=sheet.amount_minor,
        currency=sheet.currency,
        ticket=ticket_read(sheet.ticket, utcnow()),
    )


class SandboxConfirm(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"payment_method": "pm_card_visa"}]}
    )

    payment_method: str = Field(
        min_length=3,
        max_length=64,
        description="A sandbox test card: pm_card_visa, 4242424242424242, "
        "4000000000000002 (declined), pm_card_refund … (docs/payments.md)",
    )


class SandboxEventRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event_id": "evt_sb_4f1c2a9b7d3e",
                    "type": "payment_intent.succeeded",
                    "status": "handled",
                }
            ]
        }
    )

    event_id: str
    type: str
    status: str


class SandboxConfirmRead(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "events": [
                        {
                            "event_id": "evt_sb_4f1c2a9b7d3e",
                            "type": "payment_intent.succeeded",
                            "status": "handled",
                        }
                    ],
                    "ticket": {
                        "id": "3f2b9c1d6e7a4b8c9d0e1f2a3b4c5d6e",
                        "title_id": "7d0c5a4e2b8f4a61b3f09c2d8e1a6b55",
                        "state": "active",
                        "territory": "US",
                        "price_minor": 1299,
                        "currency": "USD",
                        "purchased_at": "2026-03-01T19:02:11Z",
                        "paid_at": "2026-03-01T19:02:14Z",
                        "start_by": "2026-03-31T19:02:14Z",
                        "first_played_at": None,
                        "watch_until": None,
                        "watch_hours": 48,
                        "remaining_seconds": 2592000,
                        "failure_code": None,
                        "resume_position_seconds": 0.0,
                    },
                }
            ]
        }
    )

    events: list[SandboxEventRead]
    ticket: TicketRead


@router.post(
    "/v1/sandbox/payments/{payment_intent_id}/confirm",
    summary="Sandbox only: pay with a test card, as the PaymentSheet would",
    response_model=SandboxConfirmRead,
    operation_id="purchases_confirm_sandbox",
    responses=problems(
        "payment_not_found",
        (502, "payment_provider_not_configured"),
        "sandbox_disabled",
        "sandbox_card_unknown",
    ),
)
def confirm_sandbox_payment(
    session: DbSession, viewer: Viewer, payment_intent_id: str, body: SandboxConfirm
) -> SandboxConfirmRead:
    """Only with the sandbox provider: pays the payment with a documented test card and delivers the resulting webhook events, as Stripe would after the PaymentSheet."""
    receipts, ticket = fulfilment.confirm_sandbox_payment(
        session,
        viewer_id=viewer.user_id,
        payment_intent_id=payment_intent_id,
        payment_method=body.payment_method,
    )
    return SandboxConfirmRead(
        events=[
            SandboxEventRead(event_id=r.event_id, type=r.type, status=r.status) for r in receipts
        ],
        ticket=ticket_read(ticket, utcnow()),
    )
