"""Finance and admin: the payment review queue, staff refunds, dispute evidence, and the
audit trail of all of them. Provider calls run as jobs; answers say what was recorded."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Query, Response

from api.contract import problems
from api.deps import DbSession, FinanceUser, PageParams, ReadDb
from payments.models import ReviewStatus
from payments.schemas import (
    ActionList,
    ActionRead,
    DisputeEvidenceCreate,
    RefundCreate,
    ReviewDecision,
    ReviewPage,
    ReviewRead,
    TicketPaymentPage,
    TicketPaymentRead,
)
from tickets import refunds, review
from tickets.refunds import Recorded

router = APIRouter(prefix="/v1/finance", tags=["finance"])

IdempotencyKey = Annotated[
    str,
    Header(
        alias="Idempotency-Key",
        min_length=8,
        max_length=200,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="A fresh UUID per action; repeats return the first answer",
    ),
]


def _answer(recorded: Recorded, response: Response) -> ActionRead:
    if recorded.replayed:
        response.status_code = 200
    return ActionRead.model_validate(recorded.action)


@router.get("/payment-reviews", summary="Payments held for review", response_model=ReviewPage)
def list_reviews(
    session: ReadDb,
    staff: FinanceUser,
    page: PageParams,
    status: Annotated[ReviewStatus | None, Query(description="Only this status")] = None,
) -> ReviewPage:
    """Payments the provider flagged for review, oldest first."""
    rows, total = review.list_reviews(session, status=status, offset=page.offset, limit=page.limit)
    return ReviewPage(
        items=[ReviewRead.model_validate(r) for r in rows],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


@router.get(
    "/payment-reviews/{review_id}",
    summary="One review",
    response_model=ReviewRead,
    responses=problems("review_not_found"),
)
def get_review(session: ReadDb, staff: FinanceUser, review_id: str) -> ReviewRead:
    """The review, its payment and its ticket."""
    return ReviewRead.model_validate(review.get_review(session, review_id))


@router.post(
    "/payment-reviews/{review_id}/accept",
    summary="Keep the money received: book the sale and activate the ticket",
    response_model=ActionRead,
    status_code=201,
    responses=problems(
        "idempotency_key_reused",
        "idempotency_key_invalid",
        "request_in_progress",
        "review_already_decided",
        "review_not_found",
        "ticket_not_found",
    ),
)
def accept_review(
    session: DbSession, staff: FinanceUser, review_id: str, body: ReviewDecision
) -> ActionRead:
    """Books the sale in the ledger and activates the ticket; repeating the request with its `Idempotency-Key` answers the same action."""
    return ActionRead.model_validate(
        review.accept(
            session, review_id=review_id, actor_id=staff.user_id, reason=body.reason
        ).action
    )


@router.post(
    "/payment-reviews/{review_id}/refund",
    summary="Send the money back: a full refund through the provider (runs as a job)",
    response_model=ActionRead,
    status_code=202,
    responses=problems(
        "idempotency_key_reused",
        "idempotency_key_invalid",
        "request_in_progress",
        "review_already_decided",
        "review_not_found",
        (409, "ticket_disputed"),
        "ticket_not_found",
    ),
)
def refund_review(
    session: DbSession, staff: FinanceUser, review_id: str, body: ReviewDecision
) -> ActionRead:
    """Queues a full refund through the provider (a job); the ledger gets its negative row when the provider confirms."""
    return ActionRead.model_validate(
        review.refund(
            session, review_id=review_id, actor_id=staff.user_id, reason=body.reason
        ).action
    )


@router.post(
    "/tickets/{ticket_id}/refunds",
    summary="Refund a ticket in full or in part through the provider (runs as a job)",
    response_model=ActionRead,
    status_code=202,
    responses={
        **problems(
            "store_refund_only",
            "idempotency_key_invalid",
            "idempotency_key_reused",
            "nothing_to_refund",
            "payment_in_review",
            "refund_exceeds_payment",
            "request_in_progress",
            (409, "ticket_disputed"),
            "ticket_not_found",
            "ticket_not_paid",
        ),
        200: {
            "model": ActionRead,
            "description": "A repeat of an earlier request: the same action",
        },
    },
)
def refund_ticket(
    session: DbSession,
    staff: FinanceUser,
    ticket_id: str,
    body: RefundCreate,
    response: Response,
    idempotency_key: IdempotencyKey,
) -> ActionRead:
    """Queues the refund through the provider (a job); never more than what was paid and not yet refunded, whatever the retries."""
    recorded = refunds.request_refund(
        session,
        actor_id=staff.user_id,
        ticket_id=ticket_id,
        amount_minor=body.amount_minor,
        reason=body.reason,
        idempotency_key=idempotency_key,
    )
    return _answer(recorded, response)


@router.post(
    "/disputes/{dispute_id}/evidence",
    summary="Send dispute evidence to the provider (runs as a job)",
    response_model=ActionRead,
    status_code=202,
    responses={
        **problems(
            "dispute_not_found",
            "evidence_empty",
            "evidence_field_unknown",
            "evidence_too_long",
            "idempotency_key_invalid",
            "idempotency_key_reused",
            (502, "payment_provider_not_configured"),
            "request_in_progress",
        ),
        200: {
            "model": ActionRead,
            "description": "A repeat of an earlier request: the same action",
        },
    },
)
def dispute_evidence(
    session: DbSession,
    staff: FinanceUser,
    dispute_id: str,
    body: DisputeEvidenceCreate,
    response: Response,
    idempotency_key: IdempotencyKey,
) -> ActionRead:
    """Queues the evidence for the provider (a job)."""
    recorded = refunds.submit_dispute_evidence(
        session,
        actor_id=staff.user_id,
        dispute_id=dispute_id,
        evidence=body.evidence,
        submit=body.submit,
        reason=body.reason,
        idempotency_key=idempotency_key,
    )
    return _answer(recorded, response)


@router.get(
    "/tickets",
    summary="Find tickets and their payments: a viewer's, or one by ticket or payment id",
    response_model=TicketPaymentPage,
)
def find_tickets(
    session: ReadDb,
    staff: FinanceUser,
    page: PageParams,
    viewer_id: Annotated[
        str | None,
        Query(max_length=32, pattern=r"^[A-Za-z0-9]+$", description="Only this viewer's tickets"),
    ] = None,
    q: Annotated[
        str,
        Query(
            max_length=255,
            pattern=r"^[^\x00]*$",  # PostgreSQL text cannot hold a NUL
            description="A ticket id or the provider's payment id (pi_…)",
        ),
    ] = "",
) -> TicketPaymentPage:
    """Newest first, each with what may still be refunded."""
    found, total = refunds.find_ticket_payments(
        session, viewer_id=viewer_id, q=q, offset=page.offset, limit=page.limit
    )
    return TicketPaymentPage(
        items=[
            TicketPaymentRead(
                id=f.ticket.id,
                viewer_id=f.ticket.viewer_id,
                title_id=f.ticket.title_id,
                territory=f.ticket.territory,
                state=f.ticket.state.value,
                provider=f.ticket.provider,
                payment_intent_id=f.ticket.payment_intent_id,
                price_minor=f.ticket.price_minor,
                currency=f.ticket.currency,
                paid_at=f.ticket.paid_at,
                created_at=f.ticket.created_at,
                refundable_minor=f.refundable_minor,
                paid_currency=f.paid_currency,
            )
            for f in found
        ],
        total=total,
        offset=page.offset,
        limit=page.limit,
    )


@router.get(
    "/tickets/{ticket_id}/payment-actions",
    summary="The audit trail of a ticket's money: who did what, when, why",
    response_model=ActionList,
    responses=problems("ticket_not_found"),
)
def ticket_actions(session: ReadDb, staff: FinanceUser, ticket_id: str) -> ActionList:
    """Every staff money action on the ticket, newest first."""
    return ActionList(
        items=[ActionRead.model_validate(a) for a in refunds.actions_for_ticket(session, ticket_id)]
    )


@router.get(
    "/payment-actions/{action_id}",
    summary="One staff money action and what the provider answered",
    response_model=ActionRead,
    responses=problems("payment_action_not_found"),
)
def get_action(session: ReadDb, staff: FinanceUser, action_id: str) -> ActionRead:
    """The action, its reason and the provider's answer."""
    return ActionRead.model_validate(refunds.get_action(session, action_id))
