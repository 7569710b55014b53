"""/metrics as an operator's Prometheus sees it: business figures read from the database,
a short cache in front of them, and the bearer token that guards them."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import event
from sqlalchemy.orm import Session

from api import metrics as business_metrics
from core import jobs, outbox
from core.db import get_engine, unit_of_work, utcnow
from tests.boxoffice.support import pay, pending_ticket, refund
from tests.helpers import create_licensed_title, create_studio, create_user
from tests.ops.support import declined, qualify
from tests.payments.conftest import Configure
from transcoding import service as transcoding
from transcoding import tasks as transcoding_tasks

pytestmark = pytest.mark.usefixtures("db")

TOKEN = "metrics-" + "t" * 40
JOBS = transcoding_tasks  # registers the studio webhook job this module runs in-process


@jobs.job("tests.metrics.always_fails", max_attempts=1)
def always_fails(session: Session) -> None:
    raise RuntimeError("the studio's server is down")


@pytest.fixture(autouse=True)
def _fresh_figures(configure: Configure) -> Iterator[None]:
    """Jobs here run in-process; the cache is dropped so each scrape reads this test's rows."""
    configure(geo_fallback_country="US")
    outbox.set_publish_after_commit(False)
    business_metrics.BUSINESS.forget()
    yield
    outbox.set_publish_after_commit(True)
    business_metrics.BUSINESS.forget()


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of an exposition, keyed by name and sorted labels."""
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return found


def scrape(
    client: TestClient, **headers: str
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    return samples(response.text)


def test_business_figures_come_from_the_database(client: TestClient) -> None:
    studio = create_studio()
    film = create_licensed_title(studio.id, slug="harbour-lights")
    viewers = [create_user(f"v{i}-{uuid.uuid4().hex[:6]}@example.com") for i in range(3)]
    us, ca, declined_viewer = viewers
    first = pending_ticket(us.id, film.id, "US")
    second = pending_ticket(ca.id, film.id, "CA")
    third = pending_ticket(declined_viewer.id, film.id, "US")
    pay(first, utcnow() - timedelta(hours=1))
    pay(second, utcnow() - timedelta(hours=1))
    refund(second, 1599, utcnow())  # wholly: the ticket is refunded
    refund(first, 300, utcnow())  # in part: the ticket stays watchable
    declined(third)
    qualify(first)
    backlog_before = scrape(client)[("pocketcinema_outbox_backlog", ())]
    business_metrics.BUSINESS.forget()
    with unit_of_work() as session:
        # An encode waiting an hour for a worker, a studio webhook that could not be
        # delivered (its release is gone), and a job that fails for good.
        chunk = outbox.enqueue(session, transcoding.CHUNK_JOB, queue="transcode", chunk_id="c1")
        chunk.created_at = utcnow() - timedelta(hours=1)
        hook = outbox.enqueue(
            session, transcoding.NOTIFY_JOB, release_id="gone", event="release.ready", attempt=1
        )
        hook_args = dict(hook.args)
        failing = outbox.enqueue(session, "tests.metrics.always_fails")
    assert jobs.run_job(transcoding.NOTIFY_JOB, hook.id, hook_args)[0] == "retry"
    assert jobs.run_job("tests.metrics.always_fails", failing.id, {})[0] == "failed"

    figures = scrape(client)

    assert figures[("pocketcinema_tickets_sold_total", (("currency", "USD"),))] == 1
    assert figures[("pocketcinema_tickets_sold_total", (("currency", "CAD"),))] == 1
    assert figures[("pocketcinema_tickets_refunded_total", (("currency", "CAD"),))] == 1
    assert figures[("pocketcinema_tickets_refunded_total", (("currency", "USD"),))] == 0
    assert figures[("pocketcinema_gross_minor_units_total", (("currency", "USD"),))] == 1299
    assert figures[("pocketcinema_gross_minor_units_total", (("currency", "CAD"),))] == 1599
    assert figures[("pocketcinema_net_minor_units", (("currency", "CAD"),))] == 0
    assert figures[("pocketcinema_net_minor_units", (("currency", "USD"),))] == 1299 - 300
    assert figures[("pocketcinema_purchases_failed", (("currency", "USD"),))] == 1
    assert figures[("pocketcinema_qualified_views_total", ())] == 1
    assert figures[("pocketcinema_transcode_queue_depth", ())] == 1
    assert figures[("pocketcinema_transcode_queue_oldest_age_seconds", ())] >= 3600
    assert figures[("pocketcinema_outbox_oldest_age_seconds", ())] >= 3600
    # Two more open jobs (the chunk, the webhook backing off); the failed job is out.
    assert figures[("pocketcinema_outbox_backlog", ())] == backlog_before + 2
    assert figures[("pocketcinema_webhook_deliveries_retrying", ())] == 1
    assert figures[("pocketcinema_webhook_deliveries_failed_total", ())] == 0
    failed_key = ("pocketcinema_jobs_failed_total", (("task", "tests.metrics.always_fails"),))
    assert figures[failed_key] == 1
    # The job runner counted the delivery in this process too.
    runs = (
        "pocketcinema_job_runs_total",
        (("outcome", "failed"), ("task", "tests.metrics.always_fails")),
    )
    assert figures[runs] >= 1


def test_a_scrape_reads_the_database_once_per_cache_period(
    client: TestClient, configure: Configure
) -> None:
    configure(metrics_cache_seconds="3600")
    statements: list[str] = []

    def count(*args: Any) -> None:
        if str(args[2]).lstrip().upper().startswith("SELECT"):  # not BEGIN on SQLite
            statements.append(str(args[2]))

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", count)
    try:
        before = business_metrics.BUSINESS.reads
        first = scrape(client)
        read_cost = len(statements)
        studio = create_studio()
        create_licensed_title(studio.id, slug="later-film")
        statements.clear()
        second = scrape(client)
        assert business_metrics.BUSINESS.reads == before + 1
        assert statements == []  # the cached answer: not one query
        assert (
            first[("pocketcinema_outbox_backlog", ())]
            == second[("pocketcinema_outbox_backlog", ())]
        )
        business_metrics.BUSINESS.forget()
        scrape(client)
        assert business_metrics.BUSINESS.reads == before + 2
    finally:
        event.remove(engine, "before_cursor_execute", count)
    # Two ranges over each append-only table (rows settled since the last read, and the
    # newest rows), then declined/refunded tickets, live sessions and open jobs.
    assert 1 <= read_cost <= 7, f"a read costs {read_cost} queries"


def test_metrics_want_the_bearer_token_when_one_is_set(
    client: TestClient, configure: Configure
) -> None:
    configure(metrics_token=TOKEN)
    missing = client.get("/metrics")
    assert missing.status_code == 401
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["code"] == "metrics_unauthorized"
    wrong = client.get("/metrics", headers={"Authorization": "Bearer " + "x" * 48})
    assert wrong.json()["code"] == "metrics_unauthorized"
    basic = client.get("/metrics", headers={"Authorization": "Basic " + TOKEN})
    assert basic.status_code == 401
    figures = scrape(client, Authorization=f"Bearer {TOKEN}")
    assert ("pocketcinema_outbox_backlog", ()) in figures


def production(configure: Configure, tmp: Any, **extra: str) -> None:
    key = secrets.token_urlsafe
    configure(
        mode="production",
        secret_key=key(48),
        playback_secret_key=key(48),
        url_signing_key=key(48),
        webhook_signing_key=key(48),
        rate_limit_storage_url="redis://127.0.0.1:6379/3",
        payment_provider="stripe",
        stripe_secret_key="sk_live_abc",
        stripe_webhook_secret="whsec_abc",
        kek_file=str(tmp / "kek.json"),
        smtp_host="smtp.example.com",
        mail_from="Pocket Cinema <no-reply@cinema.example.com>",
        **extra,
    )


def test_production_with_a_metrics_port_keeps_the_public_port_silent(
    client: TestClient, configure: Configure, tmp_path: Any
) -> None:
    production(configure, tmp_path, metrics_port="9100")
    hidden = client.get("/metrics")
    assert hidden.status_code == 404
    assert "pocketcinema_" not in hidden.text


def test_production_with_a_token_serves_metrics_to_its_holder(
    client: TestClient, configure: Configure, tmp_path: Any
) -> None:
    production(configure, tmp_path, metrics_token=TOKEN)
    assert client.get("/metrics").status_code == 401
    assert scrape(client, Authorization=f"Bearer {TOKEN}")


def test_append_only_totals_fold_in_settled_rows_and_read_only_newer_ones(
    client: TestClient, configure: Configure
) -> None:
    # No overlap: every row is settled as soon as it is read; no cache: every scrape reads.
    configure(boxoffice_rollup_overlap_seconds="0", metrics_cache_seconds="0")
    film = create_licensed_title(create_studio().id, slug="folded")
    buyers = [create_user(f"fold-{i}-{uuid.uuid4().hex[:6]}@example.com") for i in range(2)]
    pay(pending_ticket(buyers[0].id, film.id), utcnow())
    sold = ("pocketcinema_tickets_sold_total", (("currency", "USD"),))
    assert scrape(client)[sold] == 1
    folded_through = business_metrics.BUSINESS._tally.through
    assert folded_through is not None
    ledger_queries: list[str] = []

    def capture(*args: Any) -> None:
        if "ledger_entry" in str(args[2]):
            ledger_queries.append(str(args[2]))

    engine = get_engine()
    event.listen(engine, "before_cursor_execute", capture)
    try:
        pay(pending_ticket(buyers[1].id, film.id), utcnow())
        ledger_queries.clear()
        figures = scrape(client)
    finally:
        event.remove(engine, "before_cursor_execute", capture)
    assert figures[sold] == 2  # the first sale from the tally, the second read anew
    assert figures[("pocketcinema_gross_minor_units_total", (("currency", "USD"),))] == 2 * 1299
    # Both ledger queries of this read are ranges after the folded mark, none a full scan.
    assert len(ledger_queries) == 2
    assert all("created_at >" in query for query in ledger_queries)
