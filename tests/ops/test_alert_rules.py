"""The alert rules and the Grafana dashboard in infra/ parse and ask only for metrics (and
labels) that the service really exports: every name is checked against a live scrape of the
API's /metrics and of a worker's registry, with data in the database so labelled series
exist. promtool (Prometheus' own checker, fetched by `./run ops-setup`) checks the PromQL."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.orm import Session

from api import metrics as business_metrics
from core import jobs, outbox
from core.db import unit_of_work, utcnow
from core.metrics import worker_registry
from tests.boxoffice.support import pay, pending_ticket
from tests.conftest import IN_CI
from tests.helpers import ROOT, create_licensed_title, create_studio, create_user
from tests.ops.support import declined

ALERTS = ROOT / "infra" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "infra" / "grafana" / "pocketcinema.json"
NAME = re.compile(r"\bpocketcinema_[a-z0-9_]+\b")
SELECTOR = re.compile(r"\b(pocketcinema_[a-z0-9_]+)\{([^}]*)\}")
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


@jobs.job("tests.alerts.sample_job", max_attempts=1)
def sample_job(session: Session) -> None:
    raise RuntimeError("a failure, so that failure series exist")


def alert_expressions() -> list[str]:
    rules = yaml.safe_load(ALERTS.read_text())
    expressions = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]
    assert len(expressions) >= 4
    return expressions


def dashboard_expressions() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel["targets"]]


@pytest.fixture
def exported(client: TestClient, configure: Any) -> Iterator[dict[str, set[str]]]:
    """Series name -> label names, from what the API and a worker export right now."""
    # FX fetching on, so its gauges are exported (production has it on by default).
    configure(geo_fallback_country="US", fx_fetch_enabled="true")
    outbox.set_publish_after_commit(False)
    film = create_licensed_title(create_studio().id, slug="alerting")
    buyer, declined_buyer = (create_user(f"alerts-{uuid.uuid4().hex}@example.com") for _ in "ab")
    pay(pending_ticket(buyer.id, film.id), utcnow() - timedelta(minutes=5))
    declined(pending_ticket(declined_buyer.id, film.id))
    with unit_of_work() as session:
        job = outbox.enqueue(session, "tests.alerts.sample_job")
    jobs.run_job("tests.alerts.sample_job", job.id, {})
    business_metrics.BUSINESS.forget()
    texts = [client.get("/metrics").text, generate_latest(worker_registry()).decode()]
    series: dict[str, set[str]] = {}
    for text in texts:
        for family in text_string_to_metric_families(text):
            series.setdefault(family.name, set())
            for sample in family.samples:
                series.setdefault(sample.name, set()).update(sample.labels)
    yield series
    outbox.set_publish_after_commit(True)
    business_metrics.BUSINESS.forget()


@pytest.mark.usefixtures("db")
@pytest.mark.parametrize("source", ["alerts", "dashboard"])
def test_rules_and_panels_ask_only_for_exported_metrics(
    source: str, exported: dict[str, set[str]]
) -> None:
    expressions = alert_expressions() if source == "alerts" else dashboard_expressions()
    for expr in expressions:
        names = set(NAME.findall(expr))
        assert names, f"no Pocket Cinema metric in {expr!r}"
        missing = names - exported.keys()
        assert not missing, f"{sorted(missing)} are not exported (in {expr!r})"
        labels_of_expr = set().union(*(exported[n] for n in names))
        for name, matchers in SELECTOR.findall(expr):
            for matcher in filter(None, (m.strip() for m in matchers.split(","))):
                label = re.split(r"[=!~]", matcher, maxsplit=1)[0].strip()
                assert label in exported[name], f"{name} has no label {label!r}"
        for grouping in GROUPING.findall(expr):
            for label in filter(None, (g.strip() for g in grouping.split(","))):
                assert label in labels_of_expr | {"le"}, f"no label {label!r} in {expr!r}"


def promtool() -> str:
    found = shutil.which("promtool") or str(ROOT / ".cache/promtool/usr/bin/promtool")
    if not os.access(found, os.X_OK):
        if IN_CI:
            pytest.fail("promtool is missing: CI runs ./run ops-setup", pytrace=False)
        pytest.skip("promtool is missing (./run ops-setup fetches it)")
    return found


def test_promtool_accepts_the_alert_rules() -> None:
    checked = subprocess.run(
        [promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, check=False
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert f"SUCCESS: {len(alert_expressions())} rules found" in checked.stdout


def test_promtool_rejects_a_broken_rule(tmp_path: Path) -> None:
    rules = yaml.safe_load(ALERTS.read_text())
    rules["groups"][0]["rules"][0]["expr"] = "max(pocketcinema_outbox_backlog > "
    broken = tmp_path / "alerts.yml"
    broken.write_text(yaml.safe_dump(rules))
    checked = subprocess.run(
        [promtool(), "check", "rules", str(broken)], capture_output=True, text=True, check=False
    )
    assert checked.returncode != 0
