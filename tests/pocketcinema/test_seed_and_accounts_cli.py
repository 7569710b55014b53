"""The dev seed puts something on sale; the CLI makes studios and users."""

from __future__ import annotations

import os
import subprocess
import sys

from fastapi.testclient import TestClient

from pocketcinema.seed import seed_demo
from tests.helpers import IP_IN, ROOT, client_from


def cli(*args: str, password: str | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if password is not None:
        env["POCKETCINEMA_NEW_PASSWORD"] = password
    return subprocess.run(
        [sys.executable, "-m", "pocketcinema", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_the_demo_title_is_on_sale_in_the_us_in_english_and_chinese(db: None) -> None:
    assert seed_demo() is True
    assert seed_demo() is False  # idempotent
    with client_from(IP_IN["US"]) as us:
        item = us.get("/v1/titles", headers={"Accept-Language": "en-US"}).json()["items"][0]
        assert (item["name"], item["price"]["amount_minor"], item["price"]["currency"]) == (
            "The Lantern Keeper",
            1299,
            "USD",
        )
        assert us.get("/v1/titles", params={"lang": "zh-Hant-TW"}).json()["items"][0]["name"] == (
            "守燈人"
        )
    with client_from(IP_IN["CN"]) as cn:
        assert cn.get("/v1/titles").json()["total"] == 0  # worldwide licence, but no CN price


def test_create_studio_and_user_from_the_command_line(client: TestClient) -> None:
    studio = cli("create-studio", "Lantern Films")
    assert studio.returncode == 0, studio.stderr
    user = cli(
        "create-user",
        "ops@lantern.example",
        "--role",
        "studio",
        "--studio",
        "Lantern Films",
        password="correct horse battery",
    )
    assert user.returncode == 0, user.stderr
    login = client.post(
        "/v1/auth/login", json={"email": "ops@lantern.example", "password": "correct horse battery"}
    )
    me = client.get("/v1/me", headers={"Authorization": f"Bearer {login.json()['access_token']}"})
    assert me.json()["studio_id"] == studio.stdout.strip()

    again = cli("create-studio", "Lantern Films")
    assert again.returncode == 2
    assert "studio_exists" in again.stderr
    bad_role = cli(
        "create-user", "x@example.com", "--role", "emperor", password="correct horse battery"
    )
    assert (bad_role.returncode, "unknown role" in bad_role.stderr) == (2, True)
