"""The request and response schemas of `api/routes/purchases.py`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from api.ticket_schemas import TICKET_EXAMPLE, TicketRead


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
                    # Not paid yet: the sheet is shown before the payment.
                    "ticket": TICKET_EXAMPLE
                    | {
                        "state": "pending",
                        "paid_at": None,
                        "start_by": None,
                        "remaining_seconds": None,
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
                    "ticket": TICKET_EXAMPLE,
                }
            ]
        }
    )

    events: list[SandboxEventRead]
    ticket: TicketRead
