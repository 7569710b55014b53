"""The ledger is append-only and cannot double count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import delete, text, update
from sqlalchemy.exc import DBAPIError

from core.db import get_engine, unit_of_work, utcnow
from payments import service as payments
from payments.models import LedgerEntry, LedgerIsAppendOnly, LedgerKind
from tests.helpers import create_licensed_title, create_studio, create_user
from tickets import service as tickets

pytestmark = pytest.mark.usefixtures("db")


@pytest.fixture
def entry_id() -> str:
    film = create_licensed_title(create_studio().id)
    viewer = create_user("ana@example.com")
    with unit_of_work() as session:
        sheet = tickets.purchase(
            session,
            viewer_id=viewer.id,
            country="US",
            idempotency_key="ledger-key-1",
            request=tickets.PurchaseRequest(title_id=film.id),
        )
        money = payments.Money(sheet.ticket.id, film.id, "US", "USD", 1299)
        entry = payments.record_money(
            session,
            money,
            kind=LedgerKind.sale,
            provider="sandbox",
            provider_reference=sheet.payment_intent_id,
            occurred_at=utcnow(),
        )
        assert entry is not None
        # The same movement again (a redelivered event) is not a second entry.
        again = payments.record_money(
            session,
            money,
            kind=LedgerKind.sale,
            provider="sandbox",
            provider_reference=sheet.payment_intent_id,
            occurred_at=utcnow() + timedelta(seconds=5),
        )
        assert again is None
        return entry.id


def test_orm_refuses_to_update_or_delete(entry_id: str) -> None:
    with unit_of_work() as session:
        entry = session.get_one(LedgerEntry, entry_id)
        entry.amount_minor = 1
        with pytest.raises(LedgerIsAppendOnly):
            session.flush()
        session.rollback()
    with unit_of_work() as session:
        session.delete(session.get_one(LedgerEntry, entry_id))
        with pytest.raises(LedgerIsAppendOnly):
            session.flush()
        session.rollback()
    with pytest.raises(LedgerIsAppendOnly), unit_of_work() as session:
        session.execute(update(LedgerEntry).values(amount_minor=0))
    with pytest.raises(LedgerIsAppendOnly), unit_of_work() as session:
        session.execute(delete(LedgerEntry))


def test_database_refuses_raw_updates(entry_id: str) -> None:
    with pytest.raises(DBAPIError, match="append-only"), get_engine().begin() as conn:
        conn.execute(text("UPDATE ledger_entry SET amount_minor = 1"))
    with unit_of_work() as session:
        assert session.get_one(LedgerEntry, entry_id).amount_minor == 1299


@pytest.mark.postgres
def test_postgres_refuses_raw_deletes(entry_id: str) -> None:
    with pytest.raises(DBAPIError, match="append-only"), get_engine().begin() as conn:
        conn.execute(text("DELETE FROM ledger_entry"))
    with unit_of_work() as session:
        assert session.get(LedgerEntry, entry_id) is not None


def test_amounts_are_signed_by_kind(entry_id: str) -> None:
    with unit_of_work() as session:
        sale = session.get_one(LedgerEntry, entry_id)
        money = payments.Money(sale.ticket_id, sale.title_id, "US", "USD", 500)
        refund = payments.record_money(
            session,
            money,
            kind=LedgerKind.refund,
            provider="sandbox",
            provider_reference="re_1",
            occurred_at=utcnow(),
        )
        assert refund is not None
        assert refund.amount_minor == -500
        assert payments.refunded_minor(session, sale.ticket_id) == 500
        with pytest.raises(ValueError, match="positive"):
            payments.record_money(
                session,
                payments.Money(sale.ticket_id, sale.title_id, "US", "USD", -1),
                kind=LedgerKind.sale,
                provider="sandbox",
                provider_reference="x",
                occurred_at=utcnow(),
            )
