"""The OpenAPI document is a contract an app can be generated from, proven with a real one.

openapi-typescript generates TypeScript types from the running server's /openapi.json,
tsc type-checks a viewer's journey written against them with openapi-fetch
(tests/playback/client/journey.ts), and Node runs it against the server on a loopback port:
sign up, confirm the e-mail with the mailed code, log in, the catalog in two languages, a sandbox purchase (retried), playback start,
grant refresh, heartbeat, resume from the library, stop. A second test renames one field of
the document, as a careless API change would, and tsc refuses the same journey.

The tools are installed by ``./run client-setup`` (npm), never by the test. In CI a missing
one fails the run; elsewhere the tests skip.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from api.app import create_app
from boxoffice.models import ViewHeartbeat
from catalog import service as catalog
from core.db import unit_of_work
from tests.conftest import IN_CI
from tests.helpers import code_in, mailbox, run_account_jobs, wait_for
from tests.playback.conftest import LiveServer, Viewing
from tickets.models import Ticket, TicketState

CLIENT = Path(__file__).parent / "client"
TOOLS = Path(os.environ.get("POCKETCINEMA_CLIENT_TOOLS_DIR", ".cache/client")).resolve()
STEP_TIMEOUT = 240  # seconds; tsc and node on a loaded 2-core machine


@pytest.fixture(scope="module")
def tools() -> Path:
    bins = TOOLS / "node_modules" / ".bin"
    missing = [
        name
        for name in ("openapi-typescript", "tsc")
        if not (bins / name).exists() or shutil.which("node") is None
    ]
    if missing:
        message = f"{', '.join(missing)} missing: run ./run client-setup"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return bins


def _project(directory: Path, tools: Path, spec: str) -> None:
    """A Node project in ``directory``: the journey, types generated from ``spec`` (a URL or
    a file), and the tools' node_modules."""
    for name in ("journey.ts", "tsconfig.json"):
        shutil.copy(CLIENT / name, directory / name)
    (directory / "package.json").write_text('{"type": "module", "private": true}\n')
    (directory / "node_modules").symlink_to(tools.parent)
    # A field with a default stays optional to send (openapi-typescript's default would make
    # `take_over: false` mandatory in every request).
    generate = [str(tools / "openapi-typescript"), spec, "-o", "schema.d.ts"]
    _run([*generate, "--default-non-nullable", "false"], directory)


def _run(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        argv,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert done.returncode == 0, f"{argv[0]} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _mail_to(email: str) -> list[EmailMessage]:
    run_account_jobs()
    return mailbox(email)


def _tsc(directory: Path, tools: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(tools / "tsc"), "-p", "."],
        cwd=directory,
        capture_output=True,
        text=True,
        timeout=STEP_TIMEOUT,
        check=False,
    )


@pytest.mark.slow
def test_a_generated_typescript_client_runs_the_viewer_journey(
    tools: Path, live_server: LiveServer, viewing: Viewing, tmp_path: Path
) -> None:
    with unit_of_work() as session:
        title = catalog.get_title(session, viewing.title_id)
        catalog.put_localization(session, title, "en", name="Lanterns")
        catalog.put_localization(session, title, "fr", name="Lanternes")
    _project(tmp_path, tools, f"{live_server.base_url}/openapi.json")
    checked = _tsc(tmp_path, tools)
    assert checked.returncode == 0, checked.stdout + checked.stderr

    email = f"journey-{uuid.uuid4().hex[:8]}@example.com"
    node = subprocess.Popen(
        ["node", "out/journey.js"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={
            **os.environ,
            "POCKETCINEMA_URL": live_server.base_url,
            "POCKETCINEMA_TITLE_ID": title.id,
            "POCKETCINEMA_EMAIL": email,
            "POCKETCINEMA_CODE_FILE": str(tmp_path / "code.txt"),
        },
    )
    # The mail goes out as a job after the sign-up commits: run it as the worker pool would,
    # then hand the code over as the person would type it.
    assert wait_for(lambda: node.poll() is not None or bool(_mail_to(email)), timeout=120)
    if node.poll() is None:
        (tmp_path / "code.txt").write_text(code_in(_mail_to(email)[-1]))
    output, errors = node.communicate(timeout=STEP_TIMEOUT)
    assert node.returncode == 0, errors
    journey: dict[str, Any] = json.loads(output.strip().splitlines()[-1])
    assert journey["verified_user_id"] == journey["user_id"]

    assert journey["names"] == {"en": "Lanterns", "fr": "Lanternes"}
    assert journey["purchase_statuses"] == [201, 200]
    assert journey["same_payment"] is True
    assert journey["has_client_secret"] is True
    assert (journey["amount_minor"], journey["currency"]) == (1299, "USD")
    assert journey["ticket_state"] == "active"
    assert journey["heartbeat_recorded"] is True
    assert journey["resume_at"] == 6
    assert journey["resumed_session"] != journey["first_session"]
    assert journey["stop_status"] == 204
    with unit_of_work() as session:
        tickets = session.scalars(select(Ticket).where(Ticket.viewer_id == journey["user_id"]))
        assert [(t.id, t.state) for t in tickets] == [(journey["ticket_id"], TicketState.active)]
        beats = session.scalars(
            select(ViewHeartbeat).where(ViewHeartbeat.ticket_id == journey["ticket_id"])
        ).all()
        assert [b.seq for b in beats] == [1]


@pytest.mark.backend_agnostic  # no database in it: once, in the embedded profile
def test_a_renamed_field_breaks_the_journey_at_compile_time(tools: Path, tmp_path: Path) -> None:
    spec = create_app().openapi()
    sheet = spec["components"]["schemas"]["PaymentSheetRead"]
    sheet["properties"]["payment_client_secret"] = sheet["properties"].pop("client_secret")
    sheet["required"] = [
        "payment_client_secret" if name == "client_secret" else name for name in sheet["required"]
    ]
    document = tmp_path / "openapi.json"
    document.write_text(json.dumps(spec))
    _project(tmp_path, tools, str(document))

    checked = _tsc(tmp_path, tools)

    assert checked.returncode != 0
    assert "Property 'client_secret' does not exist" in checked.stdout, checked.stdout
