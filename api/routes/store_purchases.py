"""App Store and Google Play: the app hands over a finished store purchase and gets its
ticket; the stores' notifications (refunds, revocations, consumption requests) arrive here
too. docs/stores.md describes the whole path."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response

from accounts.models import Role
from accounts.service import Principal
from api.contract import STORE_NOTIFICATION, problems
from api.deps import DbSession, require_role
from api.store_schemas import (
    AppleStorePurchaseCreate,
    GooglePlayPurchaseCreate,
    StoreNotificationReceipt,
    StorePurchaseRead,
)
from api.ticket_schemas import ticket_read
from core.db import utcnow
from payments.stores import StoreError, apple_store, google_play
from tickets import store_purchases

router = APIRouter(tags=["store purchases"])

Viewer = Annotated[Principal, require_role(Role.viewer)]


async def _raw_body(request: Request) -> bytes:
    # Read in an async dependency so the routes stay sync (they wait on row locks in the
    # thread pool); the size cap applied while the body arrived (api/limits.py).
    return await request.body()


RawBody = Annotated[bytes, Depends(_raw_body)]


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
    responses={
        **problems(
            "country_unknown",
            "not_licensed_in_country",
            "outside_licence_window",
            "title_not_found",
            "purchase_in_progress",
            (409, "release_not_ready"),
            "store_price_mismatch",
            "store_purchase_claimed",
            "store_purchase_revoked",
            "store_purchase_pending",
            "store_product_unknown",
            "store_transaction_invalid",
            (422, "store_environment_mismatch"),
            "store_not_configured",
            "store_unavailable",
            "store_request_refused",
            "viewer_not_found",
        ),
        200: {
            "model": StorePurchaseRead,
            "description": "This store transaction was already a ticket of the caller's",
        },
    },
)
def create_apple_purchase(
    session: DbSession, viewer: Viewer, body: AppleStorePurchaseCreate, response: Response
) -> StorePurchaseRead:
    """The app sends the App Store transaction; the server verifies it with Apple and activates the ticket once. Sending the same transaction again answers the same ticket."""
    purchase = apple_store().verify_transaction(body.signed_transaction)
    claimed = store_purchases.claim(session, viewer_id=viewer.user_id, purchase=purchase)
    return _read(claimed, response)


@router.post(
    "/v1/store-purchases/google",
    operation_id="store_purchases_google_create",
    summary="Get the ticket a Google Play purchase bought (purchase token)",
    response_model=StorePurchaseRead,
    status_code=201,
    responses={
        **problems(
            "country_unknown",
            "not_licensed_in_country",
            "outside_licence_window",
            "title_not_found",
            "purchase_in_progress",
            (409, "release_not_ready"),
            "store_price_mismatch",
            "store_purchase_claimed",
            "store_purchase_revoked",
            "store_purchase_pending",
            "store_product_unknown",
            "store_transaction_invalid",
            (422, "store_environment_mismatch"),
            "store_not_configured",
            "store_unavailable",
            "store_request_refused",
            "viewer_not_found",
            (422, "store_app_mismatch"),
        ),
        200: {
            "model": StorePurchaseRead,
            "description": "This store transaction was already a ticket of the caller's",
        },
    },
)
def create_google_purchase(
    session: DbSession, viewer: Viewer, body: GooglePlayPurchaseCreate, response: Response
) -> StorePurchaseRead:
    """The app sends the Google Play purchase token; the server verifies it with Google, acknowledges it and activates the ticket once. Sending it again answers the same ticket."""
    play = google_play()
    if body.package_name is not None and body.package_name != play.package_name:
        raise StoreError("the purchase belongs to another app", code="store_app_mismatch")
    purchase = play.verify_purchase(body.product_id, body.purchase_token)
    claimed = store_purchases.claim(session, viewer_id=viewer.user_id, purchase=purchase)
    return _read(claimed, response)


@router.post(
    "/v1/webhooks/app-store",
    operation_id="webhooks_app_store",
    summary="App Store Server Notifications V2 (signed; set this URL in App Store Connect)",
    response_model=StoreNotificationReceipt,
    responses={
        **problems(
            "store_notification_invalid",
            "store_notification_stale",
            (400, "store_environment_mismatch"),
            (400, "store_app_mismatch"),
            "store_not_configured",
            "store_unavailable",
        ),
    },
    tags=["webhooks"],
    openapi_extra={"security": STORE_NOTIFICATION},
)
def apple_notification(session: DbSession, body: RawBody) -> StoreNotificationReceipt:
    """App Store Server Notifications v2 (refunds, revocations), verified and applied once per notification."""
    notice = apple_store().verify_notification(body)
    receipt = store_purchases.apply_notice(session, notice)
    return StoreNotificationReceipt(
        notification_id=receipt.notice_id, type=receipt.type, status=receipt.status
    )


@router.post(
    "/v1/webhooks/google-play",
    operation_id="webhooks_google_play",
    summary="Google Play real-time developer notifications (Pub/Sub push with an OIDC token)",
    response_model=StoreNotificationReceipt,
    responses={
        **problems(
            "store_notification_invalid",
            "store_notification_unauthenticated",
            "store_notification_stale",
            (400, "store_environment_mismatch"),
            (400, "store_app_mismatch"),
            "store_not_configured",
            "store_unavailable",
        ),
    },
    tags=["webhooks"],
    openapi_extra={"security": STORE_NOTIFICATION},
)
def google_notification(
    session: DbSession,
    body: RawBody,
    authorization: Annotated[str | None, Header()] = None,
) -> StoreNotificationReceipt:
    """Google Play real-time developer notifications (Pub/Sub push), verified and applied once per message."""
    notice = google_play().verify_push(authorization, body)
    receipt = store_purchases.apply_notice(session, notice)
    return StoreNotificationReceipt(
        notification_id=receipt.notice_id, type=receipt.type, status=receipt.status
    )
