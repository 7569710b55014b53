"""Viewer routes: "my library" — the tickets bound to the account, on every device."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict

from api.contract import problems
from api.deps import CurrentUser, PageParams, ReadDb
from api.ticket_schemas import TicketRead, ticket_read
from core.db import utcnow
from tickets import service as tickets
from tickets.models import TicketState

router = APIRouter(prefix="/v1/me/tickets", tags=["tickets"])


class TicketPage(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
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
                    ],
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


@router.get(
    "",
    summary="My library: my tickets, newest first",
    response_model=TicketPage,
    operation_id="tickets_list",
)
def list_my_tickets(
    session: ReadDb,
    principal: CurrentUser,
    page: PageParams,
    state: Annotated[
        TicketState | None, Query(description="Only tickets stored in this state")
    ] = None,
) -> TicketPage:
    """Every ticket of the account, on every device, with its state, the time left and where to resume."""
    rows, total = tickets.list_tickets(
        session, principal.user_id, offset=page.offset, limit=page.limit, state=state
    )
    now = utcnow()
    positions = tickets.resume_positions(session, [t.id for t in rows])
    return TicketPage(
        items=[ticket_read(t, now, positions.get(t.id, 0.0)) for t in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


@router.get(
    "/{ticket_id}",
    summary="One of my tickets",
    response_model=TicketRead,
    operation_id="tickets_get",
    responses=problems("ticket_not_found"),
)
def get_my_ticket(session: ReadDb, principal: CurrentUser, ticket_id: str) -> TicketRead:
    """A ticket of the account: state, rental clock, resume position."""
    ticket = tickets.get_ticket_for_viewer(session, principal.user_id, ticket_id)
    position = tickets.resume_positions(session, [ticket.id]).get(ticket.id, 0.0)
    return ticket_read(ticket, utcnow(), position)
