"""Viewer routes: "my library" — the tickets bound to the account, on every device."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from api.contract import problems
from api.deps import CurrentUser, PageParams, ReadDb
from api.ticket_schemas import (
    TicketPage,
    TicketRead,
    ticket_read,
)
from core.db import utcnow
from tickets import service as tickets
from tickets.models import TicketState

router = APIRouter(prefix="/v1/me/tickets", tags=["tickets"])


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
