"""What staff send and read about money: the review queue and the audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from payments.models import ActionKind, ActionStatus, ReviewStatus

Reason = Field(
    min_length=3,
    max_length=500,
    description="Why, in words finance and auditors will read later",
)


class ReviewDecision(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Reason


class RefundCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    amount_minor: int | None = Field(
        default=None,
        ge=1,
        le=10**12,
        description="Minor units of the currency paid; omit for a full refund of what is left",
    )
    reason: str = Reason


class DisputeEvidenceCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    evidence: dict[str, str] = Field(
        description="Stripe dispute evidence text fields, e.g. access_activity_log, "
        "product_description, customer_email_address, service_date, uncategorized_text",
        max_length=11,
    )
    submit: bool = Field(
        default=False,
        description="True sends the evidence to the bank now (no further changes possible)",
    )
    reason: str = Reason


class ReviewRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    ticket_id: str
    title_id: str
    territory: str
    provider: str
    payment_intent_id: str
    expected_minor: int
    expected_currency: str
    received_minor: int
    received_currency: str
    paid_at: datetime
    status: ReviewStatus
    held: list[dict[str, Any]] = Field(
        description="Refunds and chargebacks reported while open, booked once decided"
    )
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    created_at: datetime


class ReviewPage(BaseModel):
    items: list[ReviewRead]
    total: int
    offset: int
    limit: int


class ActionRead(BaseModel):
    """One entry of the audit trail: who did what to which payment, when, and why."""

    model_config = ConfigDict(from_attributes=True)

    id: str
    ticket_id: str
    review_id: str | None
    kind: ActionKind
    actor_id: str
    reason: str
    provider: str
    amount_minor: int | None
    currency: str | None
    details: dict[str, Any]
    status: ActionStatus
    provider_reference: str | None = Field(description="re_…, dp_… or pi_… at the provider")
    error_code: str | None
    error_detail: str | None
    created_at: datetime
    completed_at: datetime | None


class ActionList(BaseModel):
    items: list[ActionRead]


class TicketPaymentRead(BaseModel):
    """A ticket and its payment as finance looks it up, with what may still be refunded."""

    id: str = Field(description="The ticket")
    viewer_id: str
    title_id: str
    territory: str
    state: str
    provider: str
    payment_intent_id: str | None = Field(description="The payment at the provider (pi_…)")
    price_minor: int
    currency: str
    paid_at: datetime | None
    created_at: datetime
    refundable_minor: int = Field(
        description="Paid, less refunded, less refunds asked for (in the currency paid)"
    )
    paid_currency: str | None = Field(description="None until a sale is booked")


class TicketPaymentPage(BaseModel):
    items: list[TicketPaymentRead]
    total: int
    offset: int
    limit: int
