"""The SPEKE v2 key endpoint and the CPIX export: an external packager gets keys it can
encrypt with, stored envelope-encrypted like every content key; without the credential it
gets nothing."""

from __future__ import annotations

import os
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from catalog import service as catalog
from core.db import unit_of_work
from drm import cpix
from drm import keys as content_keys
from drm.models import ContentKey
from tests.helpers import create_studio, create_title

TOKEN = "key-exchange-" + "x7Rq2Lm9" * 6


@pytest.fixture
def release_id(db: None, configure: Any) -> str:
    configure(key_exchange_token=TOKEN)
    content_keys.reset()
    studio = create_studio("Exchange Pictures")
    title = create_title(studio.id, slug=f"exchange-{uuid.uuid4().hex[:6]}")
    with unit_of_work() as session:
        return catalog.create_release(
            session, title_id=title.id, studio_id=studio.id, label="Main"
        ).id


def speke_request(content_id: str, kids: list[str], systems: list[str]) -> bytes:
    document = cpix.Document(
        content_id=content_id,
        keys=tuple(cpix.ContentKey(k, None) for k in kids),
        periods=tuple(cpix.KeyPeriod(n) for n in range(len(kids))),
        rules=tuple(cpix.UsageRule(k, "VIDEO", n) for n, k in enumerate(kids)),
        systems=tuple(cpix.DrmSignal(k, s) for k in kids for s in systems),
    )
    return cpix.write(document)


def post(client: TestClient, body: bytes, token: str | None = TOKEN) -> Any:
    headers = {"Content-Type": "application/xml", "X-Speke-Version": "2.0"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return client.post("/v1/drm/speke/v2", content=body, headers=headers)


def test_speke_gives_keys_stored_wrapped_and_the_same_ones_again(
    client: TestClient, release_id: str
) -> None:
    kids = [os.urandom(16).hex(), os.urandom(16).hex()]
    body = speke_request(release_id, kids, [cpix.WIDEVINE, cpix.FAIRPLAY])
    answer = post(client, body)
    assert answer.status_code == 200, answer.text
    assert answer.headers["x-speke-version"] == "2.0"
    document = cpix.read(answer.content)
    assert [k.kid for k in document.keys] == kids
    assert all(k.key is not None and len(k.key) == 16 for k in document.keys)
    assert {(s.kid, s.system_id) for s in document.systems} == {
        (k, s) for k in kids for s in (cpix.WIDEVINE, cpix.FAIRPLAY)
    }
    assert [r.period for r in document.rules] == [0, 1]
    with unit_of_work() as session:
        rows = session.scalars(select(ContentKey).where(ContentKey.release_id == release_id)).all()
        assert {r.key_id for r in rows} == set(kids)
        for row, key in zip(
            sorted(rows, key=lambda r: kids.index(r.key_id)), document.keys, strict=True
        ):
            assert key.key is not None
            assert key.key not in row.wrapped_key  # the envelope, never the plain key
    # A packager's retry gets the very same keys.
    again = cpix.read(post(client, body).content)
    assert [k.key for k in again.keys] == [k.key for k in document.keys]


def test_speke_refuses_without_the_credential_and_bad_documents(
    client: TestClient, release_id: str, configure: Any
) -> None:
    body = speke_request(release_id, [os.urandom(16).hex()], [cpix.WIDEVINE])
    for token in (None, "wrong"):
        refused = post(client, body, token)
        assert refused.status_code == 401
        assert refused.json()["code"] == "invalid_credentials"
    bad = post(client, b"<not-cpix/>")
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_cpix"
    unknown = post(client, speke_request("f" * 32, [os.urandom(16).hex()], [cpix.WIDEVINE]))
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "release_not_found"
    with unit_of_work() as session:
        assert session.scalars(select(ContentKey)).all() == []
    configure(key_exchange_token="")
    off = post(client, body)
    assert off.status_code == 404
    assert off.json()["code"] == "key_exchange_off"


def test_a_key_id_of_another_release_is_refused(client: TestClient, release_id: str) -> None:
    kid = os.urandom(16).hex()
    assert post(client, speke_request(release_id, [kid], [cpix.COMMON])).status_code == 200
    studio = create_studio("Other Pictures")
    title = create_title(studio.id, slug=f"other-{uuid.uuid4().hex[:6]}")
    with unit_of_work() as session:
        other = catalog.create_release(session, title_id=title.id, studio_id=studio.id, label="M")
        other_id = other.id
    taken = post(client, speke_request(other_id, [kid], [cpix.COMMON]))
    assert taken.status_code == 409
    assert taken.json()["code"] == "key_id_taken"


def test_the_cpix_export_lists_a_release_keys(client: TestClient, release_id: str) -> None:
    with unit_of_work() as session:
        made = [content_keys.create_content_key(session, release_id) for _ in range(2)]
        release = catalog.get_release(session, release_id)
        release.outputs = {"key_periods": {"seconds": 600, "key_ids": [k.key_id for k in made]}}
    url = f"/v1/drm/releases/{release_id}/cpix"
    assert client.get(url).status_code == 401
    answer = client.get(url, headers={"Authorization": f"Bearer {TOKEN}"})
    assert answer.status_code == 200, answer.text
    document = cpix.read(answer.content)
    assert [(k.kid, k.key) for k in document.keys] == [(k.key_id, k.key) for k in made]
    assert len(document.periods) == 2
