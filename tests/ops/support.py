"""Typed helpers for operations tests: money and views moved through the real services."""

from __future__ import annotations

from datetime import timedelta

from boxoffice import views
from core.db import unit_of_work, utcnow
from tests.boxoffice.support import sandbox_event
from tickets.models import Ticket


def declined(ticket: Ticket) -> None:
    intent = {
        "id": ticket.payment_intent_id,
        "object": "payment_intent",
        "amount": ticket.price_minor,
        "currency": ticket.currency.lower(),
        "status": "requires_payment_method",
        "last_payment_error": {"code": "card_declined", "decline_code": "generic_decline"},
    }
    assert sandbox_event("payment_intent.payment_failed", intent, utcnow()) == "handled"


def qualify(ticket: Ticket) -> None:
    t0 = utcnow() - timedelta(minutes=20)
    with unit_of_work() as session:
        views.record_view_started(
            session,
            playback_session_id="ps-1",
            ticket_id=ticket.id,
            viewer_id=ticket.viewer_id,
            title_id=ticket.title_id,
            territory=ticket.territory,
            at=t0,
        )
    for seq in range(1, 22):  # 30 s heartbeats: 10.5 minutes, past the 10-minute threshold
        with unit_of_work() as session:
            views.record_heartbeat(
                session,
                playback_session_id="ps-1",
                ticket_id=ticket.id,
                viewer_id=ticket.viewer_id,
                title_id=ticket.title_id,
                territory=ticket.territory,
                seq=seq,
                watched_seconds=30.0,
                position_seconds=30.0 * seq,
                at=t0 + timedelta(seconds=30 * seq),
                runtime_seconds=7200.0,
            )
