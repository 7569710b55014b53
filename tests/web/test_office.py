"""The office in Chromium: finance reads a report and downloads it, checks reconciliation,
looks a viewer up and refunds part of a ticket with a reason, accepts a payment held for
review; an admin disables an account,
whose owner is then refused at sign-in. Screenshots of each page at 1280 and 375 px."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from accounts.models import Role
from catalog import service as catalog
from catalog.models import ReleaseStatus
from core.db import unit_of_work, utcnow
from core.outbox import OutboxJob
from core.settings import get_settings
from payments.providers import SandboxProvider
from tests.conftest import Configure
from tests.helpers import PASSWORD, auth_header, create_licensed_title, create_studio, create_user
from tests.payments.support import buy
from tests.playback.conftest import LiveServer

pytestmark = [pytest.mark.slow, pytest.mark.backend_agnostic]

Shot = Callable[[Any, str], Path]


def _paid_ticket(client: TestClient) -> tuple[str, str, str]:
    """A viewer's $12.99 ticket paid with the sandbox card, the days rolled up and the day's
    FX rates loaded, as finance finds them in the morning. Returns (ticket id, yesterday,
    today): the sale's local day in Los Angeles is one of them, whatever the hour."""
    studio = create_studio("Northern Light Films")
    film = create_licensed_title(studio.id, slug="the-film")
    ana = create_user("ana@example.com")
    sheet = buy(client, ana, film.id).json()
    paid = client.post(
        f"/v1/sandbox/payments/{sheet['payment_intent_id']}/confirm",
        json={"payment_method": "pm_card_visa"},
        headers=auth_header(ana),
    )
    assert paid.json()["ticket"]["state"] == "active", paid.text
    finance = auth_header(create_user("fin@example.com", Role.finance))
    today = utcnow().date()
    days = [(today - timedelta(days=1)).isoformat(), today.isoformat()]
    rates = "Date,USD,CAD,CNY\n" + "".join(f"{d},1.05,1.47,7.62\n" for d in days)
    loaded = client.post(
        "/v1/finance/fx-rates", content=rates, headers=finance | {"Content-Type": "text/csv"}
    )
    assert loaded.status_code == 201, loaded.text
    for day in days:
        assert client.post(f"/v1/finance/boxoffice/rollups/{day}", headers=finance).is_success
    return str(sheet["ticket"]["id"]), days[0], days[1]


def _a_payment_in_review(client: TestClient) -> str:
    """A viewer paid 1 JPY for a $12.99 ticket: the payment waits in the review queue."""
    film = create_licensed_title(create_studio("Yen Films").id, slug="yen")
    sheet = buy(client, create_user("cy@example.com"), film.id).json()
    (succeeded,) = SandboxProvider(get_settings()).confirm(
        intent_id=sheet["payment_intent_id"],
        payment_method="pm_card_visa",
        amount_minor=1,
        currency="JPY",
        metadata={"ticket_id": sheet["ticket"]["id"]},
    )
    headers = {"Stripe-Signature": succeeded.signature, "Content-Type": "application/json"}
    assert client.post(
        "/v1/webhooks/sandbox", content=succeeded.payload, headers=headers
    ).is_success
    return str(sheet["ticket"]["id"])


def _a_failed_release() -> None:
    studio = create_studio("Lumière")
    film = create_licensed_title(studio.id, slug="la-nuit", playable=False)
    with unit_of_work() as session:
        release = catalog.create_release(
            session, title_id=film.id, studio_id=studio.id, label="Director's cut"
        )
        catalog.set_status(
            release,
            ReleaseStatus.failed,
            failure_code="encode_failed",
            failure_reason="Encoding failed (ffmpeg exited with 1: Invalid data found).",
        )
        session.add(
            OutboxJob(
                task="transcoding.encode_chunk",
                args={"release_id": release.id, "index": 3},
                attempts=3,
                last_error="ffmpeg exited with 1: Invalid data found when processing input",
                failed_at=utcnow(),
            )
        )


def _both_widths(page: Any, screenshot: Shot, name: str) -> None:
    screenshot(page, f"office-{name}-1280")
    page.set_viewport_size({"width": 375, "height": 800})
    screenshot(page, f"office-{name}-375")
    page.set_viewport_size({"width": 1280, "height": 900})


def _sign_in(page: Any, base_url: str, email: str) -> None:
    page.goto(f"{base_url}/office")
    page.get_by_label("E-mail").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def test_finance_and_admin_journey(
    web: LiveServer,
    client: TestClient,
    configure: Configure,
    page_for: Any,
    screenshot: Shot,
) -> None:
    from playwright.sync_api import expect

    configure(geo_fallback_country="US")  # loopback has no country; the fallback places it
    ticket_id, yesterday, today = _paid_ticket(client)
    _a_failed_release()
    create_user("bo@example.com")
    create_user("root@example.com", Role.admin)

    page = page_for("en", 1280)
    _sign_in(page, web.base_url, "fin@example.com")
    nav = page.get_by_role("navigation", name="Main")
    expect(nav.get_by_role("link", name="Reports")).to_be_visible()
    expect(nav.get_by_role("link", name="Failures")).to_have_count(0)  # admins only

    # A report over two days, by title and territory, per day.
    page.get_by_label("From", exact=True).fill(yesterday)
    page.get_by_label("To", exact=True).fill(today)
    page.get_by_label("Territory", exact=True).check()
    page.get_by_role("button", name="Show report").click()
    results = page.locator("#report-results")
    expect(results.get_by_role("cell", name="$12.99").first).to_be_visible()
    expect(results.locator("tr.total")).to_contain_text("$12.99")
    _both_widths(page, screenshot, "reports")

    with page.expect_download() as download_info:
        page.get_by_role("button", name="Download CSV").click()
    download = download_info.value
    assert download.suggested_filename.endswith("-title-territory-day.csv")
    text = Path(download.path()).read_text(encoding="utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    film = [r for r in rows if r["Title"] == "The Film"]
    assert {r["Day"] for r in film} <= {yesterday, today}
    sold = [(r["Territory"], r["Currency"], r["Gross"]) for r in film if r["Tickets sold"] == "1"]
    assert sold == [("US", "USD", "12.99")]

    # Reconciliation of the sale's UTC day: the sandbox's books and the ledger agree.
    page.goto(f"{web.base_url}/office#/reconciliation")
    page.get_by_label("Day").fill(today)
    page.get_by_role("button", name="Show").click()
    reconciled = page.locator("#reconciliation-results")
    expect(reconciled).to_contain_text("Balanced")
    expect(reconciled.locator("dd").nth(3)).to_have_text("1")  # the sale, matched
    _both_widths(page, screenshot, "reconciliation")

    # Look the viewer up, open her ticket, refund part of it with a reason.
    page.goto(f"{web.base_url}/office#/lookup")
    page.get_by_label("Search", exact=True).fill("ana")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name="ana@example.com")).to_be_visible()
    _both_widths(page, screenshot, "lookup")
    page.get_by_role("link", name="ana@example.com").click()
    expect(page.get_by_role("button", name="Disable account")).to_have_count(0)  # finance
    page.get_by_role("link", name=ticket_id[:12] + "…").first.click()
    page.get_by_role("button", name="Refund…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Amount in USD").fill("3.00")
    dialog.get_by_label("Reason").fill("The film stuttered for the first ten minutes")
    _both_widths(page, screenshot, "refund")
    dialog.get_by_role("button", name="Refund").click()
    expect(page.locator("#status")).to_contain_text("Refund requested")
    trail = page.get_by_role("table").last
    expect(trail).to_contain_text("$3.00")
    expect(trail).to_contain_text("The film stuttered for the first ten minutes")

    # A payment that differs from its order waits for finance, who keeps the money.
    held = _a_payment_in_review(client)
    page.get_by_role("link", name="Payment reviews").click()
    expect(page.get_by_role("link", name=held[:10] + "…")).to_be_visible()
    _both_widths(page, screenshot, "reviews")
    page.get_by_role("button", name="Accept").click()
    page.get_by_role("dialog").get_by_label("Reason").fill("Customer confirmed the yen payment")
    page.get_by_role("dialog").get_by_role("button", name="Accept").click()
    expect(page.locator("#status")).to_contain_text("the sale is booked")
    expect(page.get_by_text("No payments are waiting.")).to_be_visible()

    # An admin disables an account and reads the failures.
    admin = page_for("en", 1280)
    _sign_in(admin, web.base_url, "root@example.com")
    admin.get_by_role("link", name="Look-up").click()
    admin.get_by_label("Search", exact=True).fill("bo@")
    admin.get_by_role("button", name="Search").click()
    admin.get_by_role("link", name="bo@example.com").click()
    admin.get_by_role("button", name="Disable account").click()
    admin.get_by_role("dialog").get_by_label("Reason").fill("Card testing from this account")
    admin.get_by_role("dialog").get_by_role("button", name="Disable account").click()
    expect(admin.locator("#status")).to_contain_text("disabled and signed out")
    expect(admin.get_by_role("cell", name="Card testing from this account")).to_be_visible()
    admin.get_by_role("link", name="Failures").click()
    expect(admin.get_by_role("cell", name="Invalid data found", exact=False).first).to_be_visible()
    expect(admin.get_by_role("button", name="Retry Director's cut")).to_be_visible()
    _both_widths(admin, screenshot, "failures")

    # The disabled account's owner is refused at sign-in, with the code.
    refused = page_for("en", 375)
    _sign_in(refused, web.base_url, "bo@example.com")
    expect(refused.locator("#status")).to_contain_text("(invalid_credentials)")
