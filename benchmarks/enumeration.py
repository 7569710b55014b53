"""Does sign-up or password reset reveal which addresses have accounts, by time or work?

    ./run bench enumeration              # 40 sign-ups of each kind, 200 resets of each kind
    ./run bench enumeration --rounds 10  # a quick run

Runs the API in-process on a fresh embedded database with the production password hash
cost (argon2id t=3, 64 MiB, p=4). Requests alternate between the two kinds (a new address /
an address with a confirmed account; a known / an unknown address for resets), so load on a
shared machine falls on both alike. Reports the median latency of each kind, the ratio
(taken / new), and the SQL statements each kind ran (exact, unlike times). The last line is
one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=40)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="pc-bench-enum-") as data_dir:
        os.environ.update(
            {
                "POCKETCINEMA_MODE": "development",
                "POCKETCINEMA_DATA_DIR": data_dir,
                "POCKETCINEMA_LOG_LEVEL": "WARNING",
                "POCKETCINEMA_LOG_JSON": "false",
                # Enough room for the run: limits are not what is measured here.
                "POCKETCINEMA_SIGNUP_IP_LIMIT": "100000/hour",
                "POCKETCINEMA_SIGNUP_GLOBAL_LIMIT": "100000/hour",
                "POCKETCINEMA_ACCOUNT_MAIL_LIMIT": "100000/hour",
            }
        )
        result = run(args.rounds)
    print(json.dumps(result))


def run(rounds: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient
    from sqlalchemy import event

    from api.app import create_app
    from core import outbox
    from core.db import get_engine
    from pocketcinema import migrate

    migrate.upgrade()
    outbox.set_publish_after_commit(False)  # no broker here: rows only, as a request writes
    statements = {"count": 0}

    def count(*_: Any) -> None:
        statements["count"] += 1

    event.listen(get_engine(), "before_cursor_execute", count)
    password = "a long benchmark passphrase"  # noqa: S105 - made-up accounts
    timings: dict[str, list[float]] = {"new": [], "taken": [], "known": [], "unknown": []}
    work: dict[str, set[int]] = {k: set() for k in timings}
    # Every request names an address never used before, known or not, as an attacker
    # probing a list would: per-address counters then start fresh for both kinds alike.
    owners = _accounts(rounds * 6)
    with TestClient(create_app()) as client:

        def timed(kind: str, path: str, body: dict[str, str]) -> None:
            before = statements["count"]
            started = time.perf_counter()
            response = client.post(path, json=body)
            timings[kind].append(time.perf_counter() - started)
            work[kind].add(statements["count"] - before)
            assert response.status_code == 202, response.text

        for n in range(rounds):
            order = [("new", f"new-{uuid.uuid4().hex[:10]}@example.com"), ("taken", owners.pop())]
            for kind, email in order if n % 2 else reversed(order):
                timed(kind, "/v1/auth/signup", {"email": email, "password": password})
        for n in range(rounds * 5):
            order = [("known", owners.pop()), ("unknown", f"nobody-{n}@example.com")]
            for kind, email in order if n % 2 else reversed(order):
                timed(kind, "/v1/account/password/reset", {"email": email})
    median = {k: statistics.median(v) * 1000 for k, v in timings.items()}
    return {
        "benchmark": "enumeration",
        "rounds": rounds,
        "signup_new_ms": round(median["new"], 2),
        "signup_taken_ms": round(median["taken"], 2),
        "signup_ratio_taken_over_new": round(median["taken"] / median["new"], 3),
        "signup_statements": {"new": sorted(work["new"]), "taken": sorted(work["taken"])},
        "reset_known_ms": round(median["known"], 2),
        "reset_unknown_ms": round(median["unknown"], 2),
        "reset_ratio_known_over_unknown": round(median["known"] / median["unknown"], 3),
        "reset_statements": {"known": sorted(work["known"]), "unknown": sorted(work["unknown"])},
        "load_average_1m": os.getloadavg()[0],
    }


def _accounts(count: int) -> list[str]:
    """Confirmed accounts (made the way an admin makes them, without a password, so that
    setting up costs no argon2 work)."""
    from accounts import service
    from core.db import unit_of_work

    emails = [f"owner-{n}@example.com" for n in range(count)]
    with unit_of_work() as session:
        for email in emails:
            service.create_user(session, email, None)
    return emails


if __name__ == "__main__":
    main()
