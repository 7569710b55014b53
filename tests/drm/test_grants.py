"""Playback grants: signed, expiring, scoped; and checkable at a CDN edge with nothing but
the shared secret (infra/edge/grant-check.js under node, as a CloudFront Function runs)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import replace

import pytest

from core.errors import AppError
from drm import grants, watermark
from drm.grants import Grant
from drm.watermark import codeword
from tests.conftest import IN_CI
from tests.helpers import ROOT

SECRET = b"edge-test-secret-0123456789abcdef"


def a_grant(**changes: object) -> Grant:
    grant = Grant(
        session_id="cd" * 16,
        ticket_id="t1",
        viewer_id="v1",
        title_id="f1",
        release_id="r1",
        hls_prefix="hls/r1/1",
        master="master.m3u8",
        country="US",
        device_id="phone-1",
        renditions=("audio_0_en", "subs_0_en", "video_540p"),
        key_periods=(2, 4),
        key_ids=("aa" * 16, "bb" * 16, "cc" * 16),
        expires_at=int(time.time()) + 60,
    )
    return replace(grant, **changes)  # type: ignore[arg-type]


def refusal(token: str, **kwargs: object) -> str:
    with pytest.raises(AppError) as refused:
        grants.decode(token, secret=SECRET, **kwargs)  # type: ignore[arg-type]
    return refused.value.code


def test_a_grant_says_what_it_opens_and_nothing_else() -> None:
    grant = a_grant()
    token = grants.encode(grant, secret=SECRET)
    assert len(token) < 800  # fits a header, and a URL for players without headers
    assert grants.decode(token, secret=SECRET) == grant
    assert grant.allows_media("video_540p/seg_00001.m4s")
    assert grant.allows_media("subs_0_en/seg_00002.vtt")
    for path in ("images/poster.jpg", "video_540p/../x", "video_540p", "video_540p/a/b", "../r2"):
        assert not grant.allows_media(path), path
    assert grant.allows_key("BB" * 16)
    assert not grant.allows_key("dd" * 16)


def test_forged_tampered_and_expired_grants_are_refused() -> None:
    token = grants.encode(a_grant(), secret=SECRET)
    assert refusal(grants.encode(a_grant(), secret=b"another-secret")) == "invalid_grant"
    payload, mac = token.split(".")
    widened = grants.encode(a_grant(renditions=("images",)), secret=SECRET).split(".")[0]
    assert refusal(f"{widened}.{mac}") == "invalid_grant"  # a payload swapped under a mac
    assert refusal(payload) == "invalid_grant"
    assert refusal("not-a-grant") == "invalid_grant"
    old = grants.encode(a_grant(expires_at=int(time.time()) - 5), secret=SECRET)
    assert refusal(old) == "grant_expired"
    # Decisions (heartbeat, refresh) accept a recently expired grant as "who is asking":
    # they decide against the database anyway.
    assert grants.decode(old, secret=SECRET, grace_seconds=60).session_id == "cd" * 16


def test_remembered_grants_stay_bounded_and_evicted_ones_still_verify() -> None:
    """Every remembered grant is walked by each full garbage collection (drm/grants.py): the
    memory of verified tokens stays bounded however many grants a premiere issues."""
    grant = a_grant()  # its expiry is read from the clock: made once
    first = grants.encode(grant, secret=SECRET)
    grants.decode(first, secret=SECRET)
    for n in range(grants._VERIFIED_MAX + 10):
        grants.decode(
            grants.encode(replace(grant, ticket_id=f"t{n}"), secret=SECRET), secret=SECRET
        )
    assert len(grants._verified) <= grants._VERIFIED_MAX
    assert (first, SECRET) not in grants._verified  # the oldest went first
    assert grants.decode(first, secret=SECRET) == grant  # and is simply verified again


def test_an_issued_grant_is_remembered_as_verifying_its_token_reads_it() -> None:
    """The memory fills at issue from what was signed: a hit and a verification give the
    same grant (types and bounds too: a watermark step below 1 reads as 1)."""
    shapes = [
        a_grant(),
        a_grant(marked=("video_540p",), mark_every=3, watch_until=int(time.time()) + 900),
        a_grant(protection="cbcs", mark_every=0),
    ]
    for grant in shapes:
        token = grants.encode(grant, secret=SECRET)
        remembered = grants._verified[(token, SECRET)]
        assert remembered == grants._verify(token, SECRET)
    assert grants._verified[(token, SECRET)].mark_every == 1


def test_a_decision_does_not_remember_the_grant_it_replaces() -> None:
    token = grants.encode(a_grant(), secret=SECRET)
    grants._verified.pop((token, SECRET))
    grants.decode(token, secret=SECRET, grace_seconds=60)
    assert (token, SECRET) not in grants._verified
    grants.decode(token, secret=SECRET)  # a key or playlist request
    assert (token, SECRET) in grants._verified


def _node() -> str:
    found = shutil.which("node") or shutil.which("nodejs")
    if found is None:
        if IN_CI:
            pytest.fail("node is missing (Debian package nodejs)", pytrace=False)
        pytest.skip("node is missing")
    return found


EDGE_DRIVER = """
const edge = require(process.argv[1]);
const cases = JSON.parse(require("fs").readFileSync(0, "utf8"));
const out = cases.map((c) => {
  const r = edge.checkGrant(c.token, c.path, c.secret, c.now);
  return r.ok ? "ok" : r.code;
});
const request = (headers, uri) => ({ request: { uri, headers, querystring: {} } });
const viaHandler = edge.handler(request({}, "/x"));
console.log(JSON.stringify({ out, anonymous: viaHandler.statusCode }));
"""


def test_an_edge_function_checks_grants_with_only_the_secret() -> None:
    node = _node()
    now = int(time.time())
    good = grants.encode(a_grant(expires_at=now + 30), secret=SECRET)
    expired = grants.encode(a_grant(expires_at=now - 1), secret=SECRET)
    forged = grants.encode(a_grant(renditions=("images",)), secret=b"guess")
    _, mac = good.split(".")
    swapped = grants.encode(a_grant(hls_prefix="hls/r2/1"), secret=SECRET).split(".")[0]
    cases = {
        "segment": (good, "/hls/r1/1/video_540p/seg_00001.m4s"),
        "subtitle": (good, "/hls/r1/1/subs_0_en/seg_00001.vtt"),
        "another rendition": (good, "/hls/r1/1/video_1080p/seg_00001.m4s"),
        "another release": (good, "/hls/r2/1/video_540p/seg_00001.m4s"),
        "the poster": (good, "/hls/r1/1/images/poster.jpg"),
        "climbing out": (good, "/hls/r1/1/video_540p/../../r2/1/video_540p/seg_00001.m4s"),
        "expired": (expired, "/hls/r1/1/video_540p/seg_00001.m4s"),
        "forged": (forged, "/hls/r1/1/images/poster.jpg"),
        "payload swapped": (f"{swapped}.{mac}", "/hls/r2/1/video_540p/seg_00001.m4s"),
    }
    sent = [
        {"token": token, "path": path, "secret": SECRET.decode(), "now": now}
        for token, path in cases.values()
    ]
    done = subprocess.run(
        [node, "-e", EDGE_DRIVER, str(ROOT / "infra" / "edge" / "grant-check.js")],
        input=json.dumps(sent),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    answer = json.loads(done.stdout)
    verdicts = dict(zip(cases, answer["out"], strict=True))
    assert verdicts == {
        "segment": "ok",
        "subtitle": "ok",
        "another rendition": "media_not_granted",
        "another release": "media_not_granted",
        "the poster": "media_not_granted",
        "climbing out": "media_not_granted",
        "expired": "grant_expired",
        "forged": "invalid_grant",
        "payload swapped": "invalid_grant",
    }
    assert answer["anonymous"] == 401
    # A watermarked rendition: the session's own variant of each segment, and no other;
    # the edge computes the same codeword as drm/watermark.py. Both packages' names (the
    # cbcs one carries the key period), and a release that marks every 3rd segment only
    # (the others: variant A for everyone).
    for every, name in ((1, "seg_{n:05d}.m4s"), (3, "p{p}_seg_{n:05d}.m4s")):
        marked = a_grant(expires_at=now + 30, renditions=("video_540p", "video_540p.b"))
        marked = replace(marked, marked=("video_540p",), mark_every=every)
        token = grants.encode(marked, secret=SECRET)
        assert grants.decode(token, secret=SECRET).mark_every == every
        bits = [b if n % every == 0 else 0 for n, b in enumerate(codeword(marked.session_id, 600))]
        files = [name.format(p=n // 15, n=n + 1) for n in range(600)]
        own = [f"/hls/r1/1/video_540p{'.b' * b}/{f}" for f, b in zip(files, bits, strict=True)]
        other = [
            f"/hls/r1/1/video_540p{'.b' * (1 - b)}/{f}" for f, b in zip(files, bits, strict=True)
        ]
        init = ["/hls/r1/1/video_540p/init.mp4", "/hls/r1/1/video_540p.b/init.mp4"]
        paths = [*own, *other, *init]
        done = subprocess.run(
            [node, "-e", EDGE_DRIVER, str(ROOT / "infra" / "edge" / "grant-check.js")],
            input=json.dumps(
                [{"token": token, "path": p, "secret": SECRET.decode(), "now": now} for p in paths]
            ),
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        edge = json.loads(done.stdout)["out"]
        expected = ["ok"] * 600 + ["media_not_granted"] * 600 + ["ok", "media_not_granted"]
        assert edge == expected
        for path, verdict in zip(paths, edge, strict=True):
            rel = path.removeprefix("/hls/r1/1/")
            assert watermark.allowed(marked.session_id, rel, frozenset(marked.marked), every) == (
                verdict == "ok"
            )
            # The playlists list exactly the files the edge lets through.
            if path in own:
                original = rel.replace("video_540p.b/", "video_540p/")
                assert (
                    watermark.session_path(
                        marked.session_id, original, frozenset(marked.marked), every
                    )
                    == rel
                )
    # The API decides the same way for the same grant and path (no edge-only rules).
    grant = grants.decode(good, secret=SECRET)
    for name, (_token, path) in cases.items():
        if _token == good:
            rel = path.removeprefix(f"/{grant.hls_prefix}/")
            assert grant.allows_media(rel) == (verdicts[name] == "ok"), name
