"""The account's own routes: confirm the address, reset the password, change the address,
delete the account, export its data (docs/accounts.md)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from accounts import lifecycle
from accounts.codes import CodeRefused
from accounts.service import SignUpRateLimited
from api.account_schemas import (
    Accepted,
    AccountDeletion,
    AccountExport,
    AccountRead,
    EmailChangeConfirmation,
    EmailChangeRequest,
    EmailVerification,
    ExportedTicket,
    PasswordReset,
    PasswordResetRequest,
    Tokens,
)
from api.contract import PUBLIC, problems
from api.deps import ClientIp, CurrentUser, DbSession, DeviceHeader, MailLocale, ReadDb
from api.problems import committed_problem, problem_response
from core.db import utcnow
from tickets import service as tickets

router = APIRouter(prefix="/v1/account", tags=["account"])


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


def _limited(
    request: Request, exc: SignUpRateLimited | lifecycle.CodeChecksRateLimited
) -> JSONResponse:
    limited = problem_response(exc.status, exc.code, exc.title, exc.detail, request)
    limited.headers["Retry-After"] = str(exc.retry_after)
    return limited


@router.post(
    "/email/verify",
    operation_id="account_verify_email",
    summary="Confirm the address with the mailed code, and sign in",
    description=(
        "The code from the sign-up mail, with the address it was sent to. The account's "
        "password becomes the one chosen at the sign-up that mail answered. A wrong code, "
        "an unknown address, or an address already confirmed answer the same `code_invalid`; "
        "`code_expired` and `code_used` name the other refusals. Each wrong try counts; after "
        "`ACCOUNT_CODE_MAX_ATTEMPTS` the codes are spent (sign up again for a new one)."
    ),
    response_model=Tokens,
    responses=problems("code_expired", "code_invalid", "code_used", "code_rate_limited"),
    openapi_extra={"security": PUBLIC},
)
def verify_email(
    session: DbSession,
    request: Request,
    body: EmailVerification,
    ip: ClientIp,
    response: Response,
    device: DeviceHeader = None,
) -> Tokens | JSONResponse:
    _no_store(response)
    try:
        pair = lifecycle.verify_email(session, body.email, body.code, ip, device or body.device_id)
    except CodeRefused as exc:
        return committed_problem(request, exc)
    except lifecycle.CodeChecksRateLimited as exc:
        return _limited(request, exc)
    return Tokens.of(pair)


@router.post(
    "/password/reset",
    operation_id="account_request_password_reset",
    summary="Mail a password reset code",
    description=(
        "Answers 202 and the same body for every address, after the same work: whether the "
        "address has an account is decided later, by a job that mails a code only if it does. "
        "Mails per address are limited (429 `mail_rate_limited`), counted for every address."
    ),
    status_code=202,
    response_model=Accepted,
    responses=problems("invalid_email", "mail_rate_limited", "mail_rejected"),
    openapi_extra={"security": PUBLIC},
)
def request_password_reset(
    session: DbSession,
    request: Request,
    body: PasswordResetRequest,
    locale: MailLocale,
    response: Response,
) -> Accepted | JSONResponse:
    _no_store(response)
    try:
        lifecycle.request_password_reset(session, body.email, locale)
    except SignUpRateLimited as exc:
        return _limited(request, exc)
    return Accepted(detail="if this address has an account, a code is on its way")


@router.post(
    "/password/reset/confirm",
    operation_id="account_reset_password",
    summary="Choose a new password with the mailed code",
    description=(
        "Sets the new password (the password rules of sign-up apply), ends every sign-in "
        "session of the account, confirms the address, and signs in on this device."
    ),
    response_model=Tokens,
    responses=problems(
        "code_expired",
        "code_invalid",
        "code_used",
        "code_rate_limited",
        "password_blank",
        "password_common",
        "password_too_long",
        "password_too_short",
    ),
    openapi_extra={"security": PUBLIC},
)
def reset_password(
    session: DbSession,
    request: Request,
    body: PasswordReset,
    ip: ClientIp,
    response: Response,
    device: DeviceHeader = None,
) -> Tokens | JSONResponse:
    _no_store(response)
    try:
        pair = lifecycle.reset_password(
            session, body.email, body.code, body.new_password, ip, device or body.device_id
        )
    except CodeRefused as exc:
        return committed_problem(request, exc)
    except lifecycle.CodeChecksRateLimited as exc:
        return _limited(request, exc)
    return Tokens.of(pair)


@router.post(
    "/email/change",
    operation_id="account_request_email_change",
    summary="Mail a code to a new address for this account",
    description=(
        "Needs the current password (or, for an account without one, a sign-in in the last "
        "`ACCOUNT_REAUTH_MINUTES`: 403 `password_required`, `password_incorrect`, "
        "`recent_sign_in_required`). Answers 202 alike whether or not the new address belongs "
        "to another account (whose owner is then told by mail instead)."
    ),
    status_code=202,
    response_model=Accepted,
    responses=problems(
        "password_incorrect",
        "password_required",
        "recent_sign_in_required",
        "email_unchanged",
        "invalid_email",
        "mail_rate_limited",
        "mail_rejected",
        "rate_limited",
    ),
)
def request_email_change(
    session: DbSession,
    request: Request,
    principal: CurrentUser,
    body: EmailChangeRequest,
    locale: MailLocale,
    response: Response,
) -> Accepted | JSONResponse:
    _no_store(response)
    try:
        lifecycle.request_email_change(
            session, principal.user_id, body.new_email, body.password, principal.session_id, locale
        )
    except SignUpRateLimited as exc:
        return _limited(request, exc)
    return Accepted(detail="enter the code mailed to the new address")


@router.post(
    "/email/change/confirm",
    operation_id="account_confirm_email_change",
    summary="Move the account to the new address with the mailed code",
    description=(
        "The old address is told of the change by mail. 409 `email_taken` if another account "
        "took the address meanwhile."
    ),
    response_model=AccountRead,
    responses=problems(
        "email_taken", "code_expired", "code_invalid", "code_used", "code_rate_limited"
    ),
)
def confirm_email_change(
    session: DbSession,
    request: Request,
    principal: CurrentUser,
    body: EmailChangeConfirmation,
    ip: ClientIp,
) -> AccountRead | JSONResponse:
    try:
        user = lifecycle.confirm_email_change(session, principal.user_id, body.code, ip)
    except CodeRefused as exc:
        return committed_problem(request, exc)
    except lifecycle.CodeChecksRateLimited as exc:
        return _limited(request, exc)
    return AccountRead(
        user_id=user.id,
        email=user.email,
        email_verified=user.email_verified_at is not None,
        role=user.role.value,
        display_name=user.display_name,
    )


@router.post(
    "/deletion",
    operation_id="account_delete",
    summary="Delete this account",
    description=(
        "For viewers (staff accounts are closed by an admin: 403 `staff_account`). Needs the "
        "password, or a recent sign-in for accounts without one. Tickets, payments and ledger "
        "rows keep their numbers but no longer say who bought them; every sign-in ends at once "
        "and a farewell goes to the account's address."
    ),
    status_code=204,
    responses=problems(
        "password_incorrect",
        "password_required",
        "recent_sign_in_required",
        "staff_account",
        "rate_limited",
    ),
)
def delete_account(session: DbSession, principal: CurrentUser, body: AccountDeletion) -> Response:
    lifecycle.delete_account(session, principal.user_id, body.password, principal.session_id)
    return Response(status_code=204)


@router.get(
    "/export",
    operation_id="account_export",
    summary="Everything we hold about this account, as JSON",
    response_model=AccountExport,
)
def export_account(session: ReadDb, principal: CurrentUser, response: Response) -> AccountExport:
    """Everything stored about the account (profile, tickets, playback history) as one JSON document."""
    _no_store(response)
    record = lifecycle.export_account(session, principal.user_id)
    return AccountExport(
        exported_at=utcnow().isoformat(),
        account=record.account,
        sign_in_providers=record.sign_in_providers,
        sign_in_sessions=record.sign_in_sessions,
        mails=record.mails,
        tickets=[
            ExportedTicket(
                ticket_id=t.id,
                title_id=t.title_id,
                territory=t.territory,
                price_minor=t.price_minor,
                currency=t.currency,
                state=t.state.value,
                created_at=t.created_at.isoformat(),
                paid_at=t.paid_at.isoformat() if t.paid_at else None,
                first_played_at=t.first_played_at.isoformat() if t.first_played_at else None,
            )
            for t in tickets.every_ticket_of(session, principal.user_id)
        ],
    )
