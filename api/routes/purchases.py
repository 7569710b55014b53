"""Viewer routes: buying a ticket, and the sandbox's stand-in for the PaymentSheet."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Response

from accounts.models import Role
from accounts.service import Principal
from api.contract import problems
from api.deps import DbSession, RequestCountry, require_role
from api.purchase_schemas import (
    PaymentSheetRead,
    PurchaseCreate,
    SandboxConfirm,
    SandboxConfirmRead,
    SandboxEventRead,
)
from api.ticket_schemas import ticket_read
from core.db import utcnow
from tickets import fulfilment
from tickets import service as tickets

router = APIRouter(tags=["purchases"])

Viewer = Annotated[Principal, require_role(Role.viewer)]


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
