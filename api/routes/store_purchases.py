"""App Store and Google Play: the app hands over a finished store purchase and gets its
ticket; the stores' notifications (refunds, revocations, consumption requests) arrive here
too. docs/stores.md describes the whole path."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Request, Response

from accounts.models import Role
from accounts.service import Principal
from api.deps import DbSession, require_role
from api.problems import PROBLEM_RESPONSES, Problem
from api.routes.tickets import ticket_read
from api.store_schemas import (
    AppleStorePurchaseCreate,
    GooglePlayPurchaseCreate,
    StoreNotificationReceipt,
    StorePurchaseRead,
)
from core.db import utcnow
from payments.stores import StoreError, apple_store, google_play
from tickets import store_purchases

router = APIRouter(tags=["store purchases"], responses=PROBLEM_RESPONSES)

Viewer = Annotated[Principal, require_role(Role.viewer)]


async def _raw_body(request: Request) -> bytes:
    # Read in an async dependency so the routes stay sync (they wait on row locks in the
    # thread pool); the size cap applied while the body arrived (api/limits.py).
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


def _problem(description: str) -> dict[str, Any]:
    return {
        "model": Problem,
        "content": {"application/problem+json": {}},
        "description": description,
    }


PURCHASE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "This store transaction was already a ticket of the caller's"},
    404: _problem("store_not_configured, title_not_found"),
    409: _problem(
        "store_purchase_claimed, store_price_mismatch, store_purchase_revoked, "
        "store_purchase_pending, release_not_ready"
    ),
    422: _problem(
        "store_transaction_invalid, store_app_mismatch, store_environment_mismatch, "
        "store_product_unknown"
    ),
    502: _problem("store_unavailable: the store did not answer; retry"),
}
NOTIFICATION_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _problem(
        "store_notification_invalid, store_notification_stale, store_app_mismatch, "
        "store_environment_mismatch"
    ),
    401: _problem("store_notification_unauthenticated (Google: the Pub/Sub push token)"),
    404: _problem("store_not_configured"),
    502: _problem("store_unavailable"),
}


def _read(claimed: store_purchases.Claimed, response: Response) -> StorePurchaseRead:
    if claimed.replayed:
        response.status_code = 200
    ticket = claimed.ticket
    return StorePurchaseRead(
        store=ticket.provider,
        transaction_id=str(ticket.payment_intent_id),
        amount_minor=ticket.price_minor,
        currency=ticket.currency,
        ticket=ticket_read(ticket, utcnow()),
    )


@router.post(
    "/v1/store-purchases/apple",
    operation_id="store_purchases_apple_create",
    summary="Get the ticket an App Store purchase bought (StoreKit 2 signed transaction)",
    response_model=StorePurchaseRead,
    status_code=201,
    responses=PURCHASE_RESPONSES,
)
def create_apple_purchase(
    session: DbSession, viewer: Viewer, body: AppleStorePurchaseCreate, response: Response
) -> StorePurchaseRead:
    purchase = apple_store().verify_transaction(body.signed_transaction)
    claimed = store_purchases.claim(session, viewer_id=viewer.user_id, purchase=purchase)
    return _read(claimed, response)


@router.post(
    "/v1/store-purchases/google",
    operation_id="store_purchases_google_create",
    summary="Get the ticket a Google Play purchase bought (purchase token)",
    response_model=StorePurchaseRead,
    status_code=201,
    responses=PURCHASE_RESPONSES,
)
def create_google_purchase(
    session: DbSession, viewer: Viewer, body: GooglePlayPurchaseCreate, response: Response
) -> StorePurchaseRead:
    play = google_play()
    if body.package_name is not None and body.package_name != play.package_name:
        raise StoreError("the purchase belongs to another app", code="store_app_mismatch")
    purchase = play.verify_purchase(body.product_id, body.purchase_token)
    claimed = store_purchases.claim(session, viewer_id=viewer.user_id, purchase=purchase)
    return _read(claimed, response)


@router.post(
    "/v1/webhooks/app-store",
    operation_id="store_notifications_apple_create",
    summary="App Store Server Notifications V2 (signed; set this URL in App Store Connect)",
    response_model=StoreNotificationReceipt,
    responses=NOTIFICATION_RESPONSES,
    tags=["webhooks"],
)
def apple_notification(session: DbSession, body: RawBody) -> StoreNotificationReceipt:
    notice = apple_store().verify_notification(body)
    receipt = store_purchases.apply_notice(session, notice)
    return StoreNotificationReceipt(
        notification_id=receipt.notice_id, type=receipt.type, status=receipt.status
    )


@router.post(
    "/v1/webhooks/google-play",
    operation_id="store_notifications_google_create",
    summary="Google Play real-time developer notifications (Pub/Sub push with an OIDC token)",
    response_model=StoreNotificationReceipt,
    responses=NOTIFICATION_RESPONSES,
    tags=["webhooks"],
)
def google_notification(
    session: DbSession,
    body: RawBody,
    authorization: Annotated[str | None, Header()] = None,
) -> StoreNotificationReceipt:
    notice = google_play().verify_push(authorization, body)
    receipt = store_purchases.apply_notice(session, notice)
    return StoreNotificationReceipt(
        notification_id=receipt.notice_id, type=receipt.type, status=receipt.status
    )
