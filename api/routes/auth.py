"""Sign-up and sign-in: email + password, Apple, Google; refresh and sign-out."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from accounts import service as accounts
from accounts.identity import Provider
from api.contract import PUBLIC, problems
from api.deps import ClientIp, CurrentUser, DbSession, ReadDb
from api.problems import problem_response

router = APIRouter(prefix="/v1", tags=["auth"])

DeviceId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
DeviceHeader = Annotated[
    str | None,
    Header(
        alias="X-Device-Id",
        max_length=128,
        pattern=r"^[A-Za-z0-9._:-]+$",
        description="The app's device id; travels with the session (claim `dev`)",
    ),
]


class SignUp(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "viewer@example.com",
                    "password": "correct horse battery staple",
                    "display_name": "Ana",
                    "device_id": "iphone-8f2c",
                }
            ]
        },
    )

    email: str = Field(max_length=320, examples=["viewer@example.com"])
    password: str = Field(
        max_length=1024, description="10 to 256 characters; not only spaces, not a common one"
    )
    display_name: str | None = Field(default=None, max_length=200)
    device_id: DeviceId | None = None


class Login(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "viewer@example.com",
                    "password": "correct horse battery staple",
                    "device_id": "iphone-8f2c",
                }
            ]
        },
    )

    email: str = Field(max_length=320)
    password: str = Field(max_length=1024)
    device_id: DeviceId | None = None


class Refresh(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"refresh_token": "rt_6Jq0sVbZx3kP9wYtLm2N", "device_id": "iphone-8f2c"}]
        },
    )

    refresh_token: str = Field(min_length=1, max_length=200)
    device_id: DeviceId | None = None


class Logout(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"refresh_token": "rt_6Jq0sVbZx3kP9wYtLm2N"}]},
    )

    refresh_token: str = Field(min_length=1, max_length=200)


class ProviderSignIn(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "id_token": "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiIwMDEifQ.c2ln",
                    "nonce": "n-0S6_WzA2Mj",
                    "device_id": "iphone-8f2c",
                }
            ]
        },
    )

    id_token: str = Field(min_length=1, max_length=20_000, description="The provider's ID token")
    nonce: str | None = Field(
        default=None, max_length=200, description="If sent, must equal the token's nonce claim"
    )
    device_id: DeviceId | None = None


class Tokens(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiI1ZThhIn0.c2ln",
                    "refresh_token": "rt_6Jq0sVbZx3kP9wYtLm2N",
                    "token_type": "Bearer",
                    "expires_in": 900,
                    "user_id": "5e8a1c3f7b9d4e2a6c8f0b1d3e5a7c9f",
                    "role": "viewer",
                    "device_id": "iphone-8f2c",
                    "created": False,
                }
            ]
        }
    )

    access_token: str
    refresh_token: str = Field(description="Single use: each refresh returns a new one")
    token_type: str = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int = Field(description="Seconds until the access token expires")
    user_id: str
    role: str
    device_id: str | None
    created: bool = Field(description="True when this request created the account")


class Me(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "user_id": "5e8a1c3f7b9d4e2a6c8f0b1d3e5a7c9f",
                    "email": "viewer@example.com",
                    "role": "viewer",
                    "studio_id": None,
                    "display_name": "Ana",
                    "device_id": "iphone-8f2c",
                }
            ]
        }
    )

    user_id: str
    email: str
    role: str
    studio_id: str | None
    display_name: str | None
    device_id: str | None


def tokens(pair: accounts.TokenPair) -> Tokens:
    return Tokens(
        access_token=pair.access_token,
        refresh_token=pair.refresh_token,
        expires_in=pair.expires_in,
        user_id=pair.user.id,
        role=pair.user.role.value,
        device_id=pair.device_id,
        created=pair.created,
    )


def committed_problem(request: Request, exc: accounts.AuthFailure) -> JSONResponse:
    # Returned, not raised: the request's transaction then commits the bookkeeping (the
    # failed attempt, the revoked family) that must outlive this refusal.
    return problem_response(exc.status, exc.code, exc.title, exc.detail, request, **exc.extra)


def _no_store(response: Response) -> None:
    response.headers["Cache-Control"] = "no-store"


class SignUpAccepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "accepted",
                    "detail": "sign in with this address and password to continue",
                }
            ]
        }
    )

    status: str = Field(default="accepted", description="Always `accepted`")
    detail: str = Field(
        default="sign in with this address and password to continue",
        description="The same answer whether or not the address already had an account",
    )


@router.post(
    "/auth/signup",
    summary="Create a viewer account with email and password",
    description=(
        "Answers 202 and the same body whether the address is new or already has an account "
        "(then nothing changes), so sign-up does not tell who has an account; continue with "
        "`/v1/auth/login`. Passwords: 10 to 256 characters, not only spaces, not on the list "
        "of common passwords (`password_common`). Limited per client address and globally "
        "(429 `signup_rate_limited`, with Retry-After)."
    ),
    status_code=202,
    response_model=SignUpAccepted,
    responses=problems(
        "invalid_email",
        "password_blank",
        "password_common",
        "password_too_long",
        "password_too_short",
        "signup_rate_limited",
        "email_taken",
    ),
    openapi_extra={"security": PUBLIC},
)
def sign_up(
    session: DbSession,
    request: Request,
    body: SignUp,
    ip: ClientIp,
    response: Response,
    device: DeviceHeader = None,
) -> SignUpAccepted | JSONResponse:
    _no_store(response)
    try:
        accounts.sign_up(
            session, body.email, body.password, ip, device or body.device_id, body.display_name
        )
    except accounts.SignUpRateLimited as exc:
        return _rate_limited(request, exc)
    return SignUpAccepted()


def _rate_limited(request: Request, exc: accounts.LoginRateLimited) -> JSONResponse:
    limited = problem_response(exc.status, exc.code, exc.title, exc.detail, request)
    limited.headers["Retry-After"] = str(exc.retry_after)
    return limited


@router.post(
    "/auth/login",
    summary="Sign in with email and password",
    response_model=Tokens,
    description=(
        "Wrong email and wrong password answer the same (`invalid_credentials`). Limits "
        "(429 with Retry-After): failed sign-ins per client address (`login_rate_limited`), "
        "per account and address, and, for devices that never signed in to the account, "
        "per account and overall (`login_throttled`: a device used before still gets in)."
    ),
    responses=problems(
        "invalid_credentials", "login_rate_limited", "login_throttled", "account_disabled"
    ),
    openapi_extra={"security": PUBLIC},
)
def login(
    session: DbSession,
    request: Request,
    body: Login,
    ip: ClientIp,
    response: Response,
    device: DeviceHeader = None,
) -> Tokens | JSONResponse:
    _no_store(response)
    try:
        pair = accounts.login(session, body.email, body.password, ip, device or body.device_id)
    except accounts.AuthFailure as exc:
        return committed_problem(request, exc)
    except accounts.LoginRateLimited as exc:
        return _rate_limited(request, exc)
    return tokens(pair)


@router.post(
    "/auth/refresh",
    summary="Trade a refresh token for new tokens (rotation)",
    description=(
        "Each refresh token works once. Presenting one again ends the whole sign-in session "
        "(`refresh_token_reused`): every token of it stops working."
    ),
    response_model=Tokens,
    responses=problems(
        (401, "device_mismatch"),
        "invalid_refresh_token",
        "refresh_token_expired",
        "refresh_token_reused",
        "account_disabled",
        "session_revoked",
    ),
    openapi_extra={"security": PUBLIC},
)
def refresh(
    session: DbSession,
    request: Request,
    body: Refresh,
    response: Response,
    device: DeviceHeader = None,
) -> Tokens | JSONResponse:
    _no_store(response)
    try:
        pair = accounts.refresh(session, body.refresh_token, device or body.device_id)
    except accounts.AuthFailure as exc:
        return committed_problem(request, exc)
    return tokens(pair)


@router.post(
    "/auth/logout",
    summary="End this sign-in session",
    status_code=204,
    openapi_extra={"security": PUBLIC},
)
def logout(session: DbSession, body: Logout) -> Response:
    """Revokes the refresh token family of this sign-in; access tokens already issued run out on their own."""
    accounts.logout(session, body.refresh_token)
    return Response(status_code=204)


def _sign_in_with(
    provider: Provider,
    session: Session,
    body: ProviderSignIn,
    response: Response,
    device: str | None,
) -> Tokens:
    _no_store(response)
    pair = accounts.sign_in_with(
        session, provider, body.id_token, device or body.device_id, body.nonce
    )
    return tokens(pair)


@router.post(
    "/auth/apple",
    summary="Sign in with Apple (ID token)",
    response_model=Tokens,
    responses=problems(
        "id_token_expired",
        "invalid_id_token",
        "provider_not_configured",
        "identity_provider_unavailable",
        "account_disabled",
    ),
    openapi_extra={"security": PUBLIC},
)
def sign_in_with_apple(
    session: DbSession, body: ProviderSignIn, response: Response, device: DeviceHeader = None
) -> Tokens:
    """Verifies Apple's ID token (signature from Apple's keys, audience, expiry) and signs in the account bound to it, creating a viewer account on first sign-in."""
    return _sign_in_with(Provider.apple, session, body, response, device)


@router.post(
    "/auth/google",
    summary="Sign in with Google (ID token)",
    response_model=Tokens,
    responses=problems(
        "id_token_expired",
        "invalid_id_token",
        "provider_not_configured",
        "identity_provider_unavailable",
        "account_disabled",
    ),
    openapi_extra={"security": PUBLIC},
)
def sign_in_with_google(
    session: DbSession, body: ProviderSignIn, response: Response, device: DeviceHeader = None
) -> Tokens:
    """Verifies Google's ID token (signature from Google's keys, audience, expiry) and signs in the account bound to it, creating a viewer account on first sign-in."""
    return _sign_in_with(Provider.google, session, body, response, device)


@router.get("/me", summary="Who am I", response_model=Me)
def me(session: ReadDb, principal: CurrentUser) -> Me:
    """The account behind the access token: id, e-mail, role, studio."""
    user = accounts.get_user(session, principal.user_id)
    return Me(
        user_id=user.id,
        email=user.email,
        role=user.role.value,
        studio_id=user.studio_id,
        display_name=user.display_name,
        device_id=principal.device_id,
    )
