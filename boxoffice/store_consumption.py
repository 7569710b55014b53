"""Answering Apple's CONSUMPTION_REQUEST from the viewing data.

When a viewer asks Apple for a refund, Apple asks the app's server how much of the purchase
was used (App Store Server Notifications V2, ``CONSUMPTION_REQUEST``) and weighs the answer.
For a rental that is the film: how much of it the ticket's viewers actually watched (the
covered content that also decides a qualified view, docs/boxoffice.md), whether it could be
watched at all, and whether a free trailer showed what was bought. Box office owns that data,
so the answer is made here and sent through ``payments.stores`` (the App Store Server API's
"Send Consumption Information").
"""

from __future__ import annotations

import logging

from sqlalchemy.orm import Session

from boxoffice import repository, views
from catalog import service as catalog
from core.errors import RetryableError
from core.settings import get_settings
from payments.stores import ConsumptionReport, StoreUnavailable, apple_store
from tickets import repository as tickets_repository

log = logging.getLogger(__name__)


def report_for(session: Session, ticket_id: str) -> ConsumptionReport:
    """What a ticket's viewing says: delivered once it could be played; consumed as the
    share of the film covered; refund preferred in full before any play, declined once the
    view qualified, prorated in between."""
    ticket = tickets_repository.get_ticket(session, ticket_id)
    if ticket is None:  # pragma: no cover - the job is queued for an existing ticket
        raise ValueError(f"no ticket {ticket_id}")
    title = catalog.get_title(session, ticket.title_id)
    runtime = title.runtime_seconds or 0
    watched = views.watched_seconds(session, ticket_id)
    milli = min(100_000, round(watched * 100_000 / runtime)) if runtime > 0 else 0
    qualified = repository.ticket_has_qualified_view(session, ticket_id)
    if qualified:
        preference = "DECLINE"
    elif watched <= 0:
        preference = "GRANT_FULL"
    else:
        preference = "GRANT_PRORATED"
    playable = bool(catalog.playable_title_ids(session, [ticket.title_id]))
    return ConsumptionReport(
        delivery_status="DELIVERED" if playable else "UNDELIVERED_OTHER",
        consumption_milli=milli,
        refund_preference=preference,
        sample_content_provided=bool(title.trailer_url or title.trailer_key),
    )


def answer(session: Session, ticket_id: str, transaction_id: str) -> str:
    """Send the consumption information for one request; returns what was done."""
    if not get_settings().apple_consumption_consent:
        # Apple accepts consumption data only with the customer's consent; without it in the
        # app's terms the right answer is none (Apple then decides on its own).
        return "not sent: POCKETCINEMA_APPLE_CONSUMPTION_CONSENT is off"
    report = report_for(session, ticket_id)
    try:
        apple_store().send_consumption(transaction_id, report)
    except StoreUnavailable as exc:
        raise RetryableError(exc.detail, code=exc.code) from None
    log.info("consumption information sent", extra={"ticket_id": ticket_id})
    return "sent"
