"""An account's life: confirming the address by a mailed code, password reset, e-mail change,
deletion and export; mail over a real SMTP server (aiosmtpd on loopback) and through the
embedded mailbox; account pre-hijacking and provider sign-in to staff, tried as an attacker
would."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from accounts import mails
from accounts.identity import jwks_cache
from accounts.models import AccountCode, MailKind, Role, User
from core.db import unit_of_work, utcnow
from core.outbox import OutboxJob
from tests.accounts.test_sign_in_with_providers import GOOGLE_ISSUER, JwksServer, Signer
from tests.boxoffice.support import pay, pending_ticket
from tests.conftest import Configure, free_port
from tests.helpers import (
    PASSWORD,
    client_from,
    code_in,
    create_licensed_title,
    create_studio,
    create_user,
    mailbox,
    mailed_code,
    run_account_jobs,
    sign_up,
)
from tests.payments.support import ledger

GOOGLE_APP = "google-client-1.apps.example"


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


def problem(response: Any, status: int) -> str:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return str(response.json()["code"])


def login(client: TestClient, email: str, password: str = PASSWORD) -> Any:
    return client.post("/v1/auth/login", json={"email": email, "password": password})


def verify(client: TestClient, email: str, code: str) -> Any:
    return client.post("/v1/account/email/verify", json={"email": email, "code": code})


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 10**6:06d}"


# --- a real SMTP server ---------------------------------------------------------------------


@dataclass
class Relay:
    """aiosmtpd on loopback, collecting what it accepts; it refuses recipients in
    ``refuse`` with a 550, as a relay does for an address that does not exist."""

    port: int
    received: list[EmailMessage] = field(default_factory=list)
    refuse: set[str] = field(default_factory=set)
    logins: list[str] = field(default_factory=list)

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such mailbox"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        raw = envelope.original_content or b""
        message = message_from_bytes(raw, policy=policy.default)
        assert isinstance(message, EmailMessage)
        self.received.append(message)
        return "250 Message accepted"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.received if m["To"] == address]


def _authenticator(relay: Relay) -> Any:
    from aiosmtpd.smtp import AuthResult, LoginPassword

    def check(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        ok = isinstance(data, LoginPassword) and data.password == b"relay secret"
        if ok:
            relay.logins.append(data.login.decode())
        return AuthResult(success=ok)

    return check


def start_relay(relay: Relay) -> Controller:
    controller = Controller(
        relay,
        hostname="127.0.0.1",
        port=relay.port,
        authenticator=_authenticator(relay),
        auth_require_tls=False,  # loopback only, as the production check demands
    )
    controller.start()
    return controller


@pytest.fixture
def relay(configure: Configure, db: None) -> Iterator[Relay]:
    """Settings pointing at a real SMTP server on loopback (plain, with a login)."""
    found = Relay(port=free_port())
    controller = start_relay(found)
    configure(
        smtp_host="127.0.0.1",
        smtp_port=str(found.port),
        smtp_security="none",
        smtp_username="pocketcinema",
        smtp_password="relay secret",
    )
    yield found
    controller.stop()


# --- confirming the address -----------------------------------------------------------------


def test_sign_up_mails_a_code_over_smtp_in_the_callers_language(
    client: TestClient, relay: Relay
) -> None:
    body = {"email": "mei@example.com", "password": PASSWORD}
    answer = client.post("/v1/auth/signup", json=body, headers={"Accept-Language": "zh-TW"})
    assert answer.status_code == 202
    assert "access_token" not in answer.json()
    # Not confirmed yet: the right password says so, a wrong one says nothing more.
    assert problem(login(client, "mei@example.com"), 403) == "email_not_verified"
    assert problem(login(client, "mei@example.com", "wrong password!"), 401) == (
        "invalid_credentials"
    )
    assert run_account_jobs() == ["done"]
    [mail] = relay.to("mei@example.com")
    assert relay.logins == ["pocketcinema"]
    assert mail["Content-Language"] == "zh-Hant"  # zh-TW falls back to zh-Hant (CLDR)
    assert "驗證碼" in mail["Subject"]
    code = code_in(mail)
    assert code in mail["Subject"]
    signed = verify(client, "MEI@example.com", f"{code[:3]} {code[3:]}")
    assert signed.status_code == 200, signed.text
    me = client.get("/v1/me", headers=bearer(signed.json())).json()
    assert me["email"] == "mei@example.com"
    assert login(client, "mei@example.com").status_code == 200
    # Single use.
    assert problem(verify(client, "mei@example.com", code), 422) == "code_used"


def test_wrong_expired_and_unknown_codes_are_refused_and_tries_are_counted(
    client: TestClient,
) -> None:
    client.post("/v1/auth/signup", json={"email": "ana@example.com", "password": PASSWORD})
    code = mailed_code("ana@example.com")
    unknown = verify(client, "nobody@example.com", code)
    bad = verify(client, "ana@example.com", wrong(code))
    assert problem(unknown, 422) == problem(bad, 422) == "code_invalid"
    assert unknown.json()["detail"] == bad.json()["detail"]
    for _ in range(4):
        assert problem(verify(client, "ana@example.com", wrong(code)), 422) == "code_invalid"
    # Five wrong tries spent the code: the right one no longer opens anything.
    assert problem(verify(client, "ana@example.com", code), 422) == "code_invalid"

    client.post("/v1/auth/signup", json={"email": "ana@example.com", "password": PASSWORD})
    fresh = mailed_code("ana@example.com")
    with unit_of_work() as session:
        session.execute(update(AccountCode).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert problem(verify(client, "ana@example.com", fresh), 422) == "code_expired"
    with unit_of_work() as session:
        stored = {c.code_hash for c in session.scalars(select(AccountCode))}
    assert fresh not in str(stored), "codes are stored hashed"


def test_code_checks_are_limited_per_client_address(configure: Configure, db: None) -> None:
    configure(account_code_ip_limit="3/minute")
    with client_from("8.8.8.8") as attacker:
        for _ in range(3):
            assert problem(verify(attacker, "ana@example.com", "000000"), 422) == "code_invalid"
        limited = verify(attacker, "ana@example.com", "000000")
        assert problem(limited, 429) == "code_rate_limited"
        assert int(limited.headers["retry-after"]) > 0


def test_sign_up_with_a_taken_address_looks_the_same_and_tells_its_owner(
    client: TestClient,
) -> None:
    sign_up(client, "ana@example.com")
    new = client.post("/v1/auth/signup", json={"email": "zed@example.com", "password": PASSWORD})
    taken = client.post(
        "/v1/auth/signup", json={"email": "ana@example.com", "password": "some other password"}
    )
    assert (new.status_code, new.json()) == (taken.status_code, taken.json())
    run_account_jobs()
    warned = mailbox("ana@example.com")[-1]
    assert warned["Subject"] == "Someone tried to sign up with your address"
    assert "Your Pocket Cinema code" in mailbox("zed@example.com")[-1]["Subject"]
    assert login(client, "ana@example.com", "some other password").status_code == 401


# --- account pre-hijacking and provider sign-in ----------------------------------------------


def test_a_stranger_who_signs_up_first_with_your_address_keeps_no_way_in(
    client: TestClient,
) -> None:
    stranger = {"email": "victim@example.com", "password": "stranger's password"}
    assert client.post("/v1/auth/signup", json=stranger).status_code == 202
    assert problem(login(client, **stranger), 403) == "email_not_verified"
    # The owner signs up too; the code of the mail they read sets *their* password.
    owner = sign_up(client, "victim@example.com", "the owner's own password")
    assert login(client, "victim@example.com", "the owner's own password").status_code == 200
    assert problem(login(client, **stranger), 401) == "invalid_credentials"
    assert client.get("/v1/me", headers=bearer(owner)).status_code == 200


@pytest.fixture
def google(configure: Configure, jwks_server: JwksServer) -> Iterator[JwksServer]:
    configure(google_client_ids=GOOGLE_APP, google_jwks_url=jwks_server.url)
    jwks_cache().clear()
    yield jwks_server
    jwks_cache().clear()


def google_token(signer: Signer, email: str, sub: str = "g-1") -> str:
    return signer.token(
        iss=GOOGLE_ISSUER, aud=GOOGLE_APP, sub=sub, email=email, email_verified=True
    )


def test_provider_sign_in_never_joins_an_unconfirmed_account(
    client: TestClient, google: JwksServer, signer: Signer
) -> None:
    stranger = {"email": "victim@example.com", "password": "stranger's password"}
    assert client.post("/v1/auth/signup", json=stranger).status_code == 202
    stranger_code = mailed_code(stranger["email"])  # it went to the victim's mailbox
    with unit_of_work() as session:
        squatter = session.scalars(select(User)).one().id
    signed = client.post(
        "/v1/auth/google", json={"id_token": google_token(signer, stranger["email"])}
    )
    assert signed.status_code == 200, signed.text
    assert signed.json()["created"] is True
    assert signed.json()["user_id"] != squatter
    me = client.get("/v1/me", headers=bearer(signed.json())).json()
    assert me["email"] == "victim@example.com"  # Google vouched for it: the address is theirs
    assert problem(login(client, **stranger), 401) == "invalid_credentials"
    # The stranger's code, mailed to the victim, opens nothing any more.
    assert problem(verify(client, stranger["email"], stranger_code), 422) == "code_invalid"


def test_a_provider_token_with_a_staff_address_never_signs_in_as_staff(
    client: TestClient, google: JwksServer, signer: Signer
) -> None:
    admin = create_user("root@example.com", Role.admin)
    signed = client.post("/v1/auth/google", json={"id_token": google_token(signer, admin.email)})
    assert signed.status_code == 200, signed.text
    assert (signed.json()["role"], signed.json()["created"]) == ("viewer", True)
    assert signed.json()["user_id"] != admin.id
    me = client.get("/v1/me", headers=bearer(signed.json())).json()
    assert (me["role"], me["email"].endswith("@users.invalid")) == ("viewer", True)


# --- password reset -----------------------------------------------------------------------


def test_password_reset_answers_alike_and_ends_every_session(client: TestClient) -> None:
    old = sign_up(client, "ana@example.com")
    known = client.post("/v1/account/password/reset", json={"email": "ana@example.com"})
    unknown = client.post("/v1/account/password/reset", json={"email": "zed@example.com"})
    assert (
        (known.status_code, known.json())
        == (unknown.status_code, unknown.json())
        == (
            202,
            known.json(),
        )
    )
    with unit_of_work() as session:
        queued = [(j.task, sorted(j.args)) for j in session.scalars(select(OutboxJob))
                  if j.task == "accounts.password_reset.start"]  # fmt: skip
    assert queued == [("accounts.password_reset.start", ["email", "locale"])] * 2
    code = mailed_code("ana@example.com")
    assert mailbox("zed@example.com") == []

    reset = {"email": "ana@example.com", "code": code}
    weak = client.post("/v1/account/password/reset/confirm", json=reset | {"new_password": "short"})
    assert problem(weak, 422) == "password_too_short"  # refused before the code is spent
    done = client.post(
        "/v1/account/password/reset/confirm",
        json=reset | {"new_password": "a brand new passphrase"},
    )
    assert done.status_code == 200, done.text
    assert problem(login(client, "ana@example.com"), 401) == "invalid_credentials"
    assert login(client, "ana@example.com", "a brand new passphrase").status_code == 200
    stale = client.post("/v1/auth/refresh", json={"refresh_token": old["refresh_token"]})
    assert problem(stale, 401) == "session_revoked"
    again = client.post(
        "/v1/account/password/reset/confirm", json=reset | {"new_password": "yet another phrase"}
    )
    assert problem(again, 422) == "code_used"


# --- e-mail change --------------------------------------------------------------------------


def test_changing_the_address_is_confirmed_on_the_new_one_and_told_to_the_old(
    client: TestClient,
) -> None:
    tokens = sign_up(client, "ana@example.com")
    headers = bearer(tokens)
    no_password = client.post(
        "/v1/account/email/change", json={"new_email": "ana@new.example"}, headers=headers
    )
    assert problem(no_password, 403) == "password_required"
    bad = client.post(
        "/v1/account/email/change",
        json={"new_email": "ana@new.example", "password": "not my password"},
        headers=headers,
    )
    assert problem(bad, 403) == "password_incorrect"
    asked = client.post(
        "/v1/account/email/change",
        json={"new_email": "Ana@New.example", "password": PASSWORD},
        headers=headers,
    )
    assert asked.status_code == 202, asked.text
    code = mailed_code("ana@new.example")
    confirmed = client.post(
        "/v1/account/email/change/confirm", json={"code": code}, headers=headers
    )
    assert confirmed.status_code == 200, confirmed.text
    assert confirmed.json()["email"] == "ana@new.example"
    run_account_jobs()
    notice = mailbox("ana@example.com")[-1]
    assert notice["Subject"] == "Your Pocket Cinema address was changed"
    assert "a***@new.example" in notice.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert login(client, "ana@new.example").status_code == 200
    assert problem(login(client, "ana@example.com"), 401) == "invalid_credentials"


def test_changing_to_an_address_in_use_tells_its_owner_and_nothing_else(
    client: TestClient,
) -> None:
    sign_up(client, "bob@example.com")
    tokens = sign_up(client, "ana@example.com")
    asked = client.post(
        "/v1/account/email/change",
        json={"new_email": "bob@example.com", "password": PASSWORD},
        headers=bearer(tokens),
    )
    assert asked.status_code == 202
    run_account_jobs()
    told = mailbox("bob@example.com")[-1]
    assert told["Subject"] == "Someone tried to use your address"
    with unit_of_work() as session:
        assert (
            session.scalars(select(AccountCode).where(AccountCode.new_email.is_not(None))).all()
            == []
        )


# --- deletion and export ---------------------------------------------------------------------


def test_deleting_the_account_keeps_the_books_and_forgets_the_person(
    client: TestClient,
) -> None:
    tokens = sign_up(client, "ana@example.com", display_name="Ana López", device_id="phone-1")
    title = create_licensed_title(create_studio().id)
    ticket = pending_ticket(tokens["user_id"], title.id)
    pay(ticket, utcnow())
    books = ledger(ticket.id)
    assert books, "the sale is in the ledger"
    exported = client.get("/v1/account/export", headers=bearer(tokens))
    assert exported.status_code == 200, exported.text
    data = exported.json()
    assert data["account"]["email"] == "ana@example.com"
    assert data["account"]["display_name"] == "Ana López"
    assert [t["ticket_id"] for t in data["tickets"]] == [ticket.id]
    assert data["sign_in_sessions"][0]["device_id"] == "phone-1"
    assert {m["kind"] for m in data["mails"]} == {"verify_email"}

    refused = client.post(
        "/v1/account/deletion", json={"password": "wrong!"}, headers=bearer(tokens)
    )
    assert problem(refused, 403) == "password_incorrect"
    gone = client.post("/v1/account/deletion", json={"password": PASSWORD}, headers=bearer(tokens))
    assert gone.status_code == 204, gone.text

    assert problem(client.get("/v1/me", headers=bearer(tokens)), 401) == "account_disabled"
    assert problem(login(client, "ana@example.com"), 401) == "invalid_credentials"
    assert ledger(ticket.id) == books  # the numbers stay
    with unit_of_work() as session:
        row = session.get_one(User, tokens["user_id"])
        assert (row.email, row.display_name, row.password_hash) == (
            f"deleted.{row.id}@users.invalid",
            None,
            None,
        )
    run_account_jobs()
    assert mailbox("ana@example.com")[-1]["Subject"] == "Your Pocket Cinema account was deleted"
    # The address is free again.
    assert sign_up(client, "ana@example.com")["user_id"] != tokens["user_id"]


def test_staff_cannot_delete_themselves(client: TestClient) -> None:
    from tests.helpers import auth_header

    admin = create_user("root@example.com", Role.admin)
    refused = client.post(
        "/v1/account/deletion", json={"password": PASSWORD}, headers=auth_header(admin)
    )
    assert problem(refused, 403) == "staff_account"


# --- mail delivery: once, retried, refused ----------------------------------------------------


def test_a_mail_is_sent_once_and_retried_while_the_relay_is_down(
    client: TestClient, configure: Configure
) -> None:
    down = Relay(port=free_port())
    configure(smtp_host="127.0.0.1", smtp_port=str(down.port), smtp_security="none")
    client.post("/v1/auth/signup", json={"email": "ana@example.com", "password": PASSWORD})
    assert run_account_jobs() == ["retry"]
    controller = start_relay(down)
    try:
        time.sleep(2.1)  # the first back-off
        assert run_account_jobs() == ["done"]
        with unit_of_work() as session:
            job = session.scalars(select(OutboxJob)).one()
            job_id, args = job.id, dict(job.args)
        from core import jobs

        assert jobs.run_job(mails.MAIL_JOB, job_id, args)[0] == "skipped"  # a duplicate delivery
        assert len(down.to("ana@example.com")) == 1
        assert verify(client, "ana@example.com", code_in(down.received[0])).status_code == 200
    finally:
        controller.stop()


def test_a_refused_address_fails_the_mail_for_good(client: TestClient, relay: Relay) -> None:
    relay.refuse.add("ghost@example.com")
    client.post("/v1/auth/signup", json={"email": "ghost@example.com", "password": PASSWORD})
    assert run_account_jobs() == ["failed"]
    with unit_of_work() as session:
        job = session.scalars(select(OutboxJob)).one()
    assert (job.failed_at is not None, job.attempts) == (True, 1)
    assert "refused" in (job.last_error or "")


# --- languages ----------------------------------------------------------------------------


@pytest.mark.backend_agnostic
@pytest.mark.parametrize(
    ("accept", "locale"),
    [("en-GB", "en"), ("zh-CN", "zh-Hans"), ("zh-HK", "zh-Hant"), ("ru", "ru"), ("es-MX", "es"),
     ("it-CH", "it"), ("fr", "en")],
)  # fmt: skip
def test_mail_language_follows_the_catalog_fallback(accept: str, locale: str) -> None:
    from api.deps import get_mail_locale
    from catalog.locales import parse_accept_language

    assert get_mail_locale(parse_accept_language(accept)) == locale


@pytest.mark.backend_agnostic
def test_every_mail_is_written_in_every_language() -> None:
    assert set(mails.LOCALES) >= {"en", "zh-Hans", "zh-Hant", "ru", "es", "it"}
    for locale in mails.LOCALES:
        subjects = set()
        for kind in MailKind:
            subject, text = mails.render(kind, locale, code="123456", note="a***@x.example")
            assert "{" not in subject + text
            subjects.add(subject)
            if kind in (MailKind.verify_email, MailKind.reset_password, MailKind.change_email):
                assert "123456" in text
        assert len(subjects) == len(MailKind), f"{locale}: two kinds share a subject"
        if locale != "en":
            assert subjects.isdisjoint(mails.render(k, "en", code="123456")[0] for k in MailKind), (
                f"{locale} is not translated"
            )


@pytest.mark.postgres
def test_racing_checks_of_one_code_let_exactly_one_through(client: TestClient) -> None:
    import threading
    from concurrent.futures import ThreadPoolExecutor

    client.post("/v1/auth/signup", json={"email": "ana@example.com", "password": PASSWORD})
    code = mailed_code("ana@example.com")
    barrier = threading.Barrier(6)

    def attempt(_: int) -> int:
        barrier.wait()
        return int(verify(client, "ana@example.com", code).status_code)

    with ThreadPoolExecutor(6) as pool:
        statuses = sorted(pool.map(attempt, range(6)))
    assert statuses == [200] + [422] * 5
