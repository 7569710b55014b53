"""A ticket as its viewer reads it: shared by the library, the purchase and the store
purchase routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from tickets import service as tickets
from tickets.models import Ticket, TicketState

# One ticket as the examples of every answer that holds one show it.
TICKET_EXAMPLE: dict[str, Any] = {
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
}


class TicketRead(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [TICKET_EXAMPLE]})

    id: str
    title_id: str
    state: TicketState = Field(description="pending, active, expired, refunded, disputed, failed")
    territory: str
    price_minor: int
    currency: str
    purchased_at: datetime
    paid_at: datetime | None
    start_by: datetime | None = Field(description="Start watching before this time")
    first_played_at: datetime | None
    watch_until: datetime | None = Field(description="Set at first play: the end of the rental")
    watch_hours: int
    remaining_seconds: int | None = Field(
        description="Time left to start (before first play) or to finish (after); "
        "null unless watchable"
    )
    failure_code: str | None
    resume_position_seconds: float = Field(
        description="Continue watching from here: the playhead last reported by any device "
        "(0 before the first play)",
        examples=[1834.5],
    )


def ticket_read(ticket: Ticket, at: datetime, resume_at: float = 0.0) -> TicketRead:
    left = tickets.remaining(ticket, at)
    return TicketRead(
        id=ticket.id,
        title_id=ticket.title_id,
        state=tickets.state_at(ticket, at),
        territory=ticket.territory,
        price_minor=ticket.price_minor,
        currency=ticket.currency,
        purchased_at=ticket.created_at,
        paid_at=ticket.paid_at,
        start_by=ticket.start_by,
        first_played_at=ticket.first_played_at,
        watch_until=ticket.watch_until,
        watch_hours=ticket.watch_hours,
        remaining_seconds=int(left.total_seconds()) if left is not None else None,
        failure_code=ticket.failure_code,
        resume_position_seconds=resume_at,
    )


class TicketPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [TICKET_EXAMPLE],
                    "total": 1,
                    "offset": 0,
                    "limit": 50,
                }
            ]
        }
    )

    items: list[TicketRead]
    total: int
    offset: int
    limit: int
