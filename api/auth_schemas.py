"""The request and response schemas of `api/routes/auth.py`."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

DeviceId = Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:-]+$")]


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
