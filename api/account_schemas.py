"""Request and response bodies of sign-in and of the account's own routes
(api/routes/auth.py, api/routes/account.py)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from accounts.service import TokenPair

DeviceId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]
Code = Annotated[
    str,
    Field(
        min_length=6,
        max_length=20,
        pattern=r"^[0-9 -]+$",
        description="The six-digit code from the mail (spaces and dashes are ignored)",
        examples=["493021"],
    ),
]


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

    @classmethod
    def of(cls, pair: TokenPair) -> Tokens:
        return cls(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            expires_in=pair.expires_in,
            user_id=pair.user.id,
            role=pair.user.role.value,
            device_id=pair.device_id,
            created=pair.created,
        )


class Accepted(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "accepted",
                    "detail": "check your mail for a 6-digit code to confirm the address",
                }
            ]
        }
    )

    status: str = Field(default="accepted", description="Always `accepted`")
    detail: str = Field(description="What happens next; the same whatever the address")


class EmailVerification(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"email": "viewer@example.com", "code": "493021"}]},
    )

    email: str = Field(max_length=320)
    code: Code
    device_id: DeviceId | None = None


class PasswordResetRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"email": "viewer@example.com"}]}
    )

    email: str = Field(max_length=320)


class PasswordReset(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "email": "viewer@example.com",
                    "code": "493021",
                    "new_password": "a long new passphrase",
                }
            ]
        },
    )

    email: str = Field(max_length=320)
    code: Code
    new_password: str = Field(
        max_length=1024, description="10 to 256 characters; not only spaces, not a common one"
    )
    device_id: DeviceId | None = None


class EmailChangeRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"new_email": "new@example.com", "password": "my current passphrase"}]
        },
    )

    new_email: str = Field(max_length=320)
    password: str | None = Field(
        default=None,
        max_length=1024,
        description="The current password; accounts without one (Apple/Google) must have "
        "signed in within the last minutes instead",
    )


class EmailChangeConfirmation(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"code": "493021"}]})

    code: Code


class AccountDeletion(BaseModel):
    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"password": "my current passphrase"}]}
    )

    password: str | None = Field(
        default=None,
        max_length=1024,
        description="The current password; accounts without one (Apple/Google) must have "
        "signed in within the last minutes instead",
    )


class AccountRead(BaseModel):
    user_id: str
    email: str
    email_verified: bool
    role: str
    display_name: str | None


class ExportedTicket(BaseModel):
    ticket_id: str
    title_id: str
    territory: str
    price_minor: int
    currency: str
    state: str
    created_at: str | None
    paid_at: str | None
    first_played_at: str | None


class AccountExport(BaseModel):
    """Everything we hold about the caller, as JSON (GDPR article 20)."""

    exported_at: str
    account: dict[str, Any]
    sign_in_providers: list[dict[str, Any]]
    sign_in_sessions: list[dict[str, Any]]
    mails: list[dict[str, Any]] = Field(description="Kinds and dates; no addresses or codes")
    tickets: list[ExportedTicket]
