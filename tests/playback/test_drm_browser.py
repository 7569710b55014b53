"""The cbcs release in a real browser: headless Chromium, Shaka Player (npm), EME ClearKey,
licenses from our license proxy. One journey:

1. DASH (the MPD's ClearKey signalling): plays from 0 s into the third key period, across two
   key changes, each period's key from its own license;
2. HLS (the same segments): the same;
3. a refunded ticket: its heartbeat is refused, its grant runs out, the next key period's
   license is refused and playback stops at that key change.

Chromium's ClearKey CDM decrypts cbcs (no cenc copy is needed) but enforces no license
duration: a ClearKey license is a bare key. What stops playback is the next key period's
license, which the proxy refuses once the grant has ended. HLS has no ClearKey key format;
the page maps the playlist's Widevine line to ClearKey and turns its key ids into a W3C
common-system pssh (``drm.initDataTransform``), as a ClearKey web client must.

Chromium and Shaka Player come from ``./run player-setup``; in CI a missing one fails the run.
"""

from __future__ import annotations

import asyncio
import base64
import json
import shutil
import subprocess
import tempfile
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from api.routes.player import shaka_path
from tests.conftest import IN_CI, free_port
from tests.playback.conftest import LiveServer, Viewing, refund
from tests.playback.test_real_clients import DevTools

pytestmark = pytest.mark.slow

# Loads Shaka Player into the page once, then plays a URL with ClearKey licenses from the
# proxy. Every request carries the current grant and the device id; a heartbeat every
# second (as an app does) renews the grant and moves its key periods with the playhead.
HARNESS = """
window.drm = window.drm || {errors: [], licenses: [], beats: [], refusals: []};
// HLS has no ClearKey key format: the playlist's Widevine line carries each period's key id
// (in its pssh, WidevinePsshData field 2), and a ClearKey CDM reads key ids from a W3C
// common-system pssh (version 1): this client makes one from the other.
const commonPssh = (initData, initDataType, drmInfo) => {
  const bytes = new Uint8Array(initData);
  const kids = [];
  for (let i = 32; i + 18 <= bytes.length; i++) {
    if (bytes[i] === 0x12 && bytes[i + 1] === 0x10) {
      kids.push([...bytes.slice(i + 2, i + 18)].map((b) => b.toString(16).padStart(2, '0')).join(''));
      i += 17;
    }
  }
  if (!kids.length) return initData;
  const hex = '00000000' + '70737368' + '01000000' + '1077efecc0b24d02ace33c1e52e2fb4b' +
    kids.length.toString(16).padStart(8, '0') + kids.join('') + '00000000';
  const box = new Uint8Array(hex.match(/../g).map((b) => parseInt(b, 16)));
  new DataView(box.buffer).setUint32(0, box.length);
  return box;
};
window.drmPlay = async (url, start, options) => {
  if (!window.shaka) {
    await new Promise((ok, bad) => {
      const s = document.createElement('script');
      s.src = '/play/shaka-player.compiled.js'; s.onload = ok; s.onerror = bad;
      document.head.appendChild(s);
    });
    shaka.polyfill.installAll();
  }
  const d = window.drm;
  if (d.player) { await d.player.destroy(); d.video.remove(); clearInterval(d.timer); }
  d.grant = start.token; d.errors = []; d.licenses = []; d.refusals = []; d.licenseTimes = [];
  const video = document.createElement('video');
  video.muted = true; document.body.appendChild(video);
  const player = new shaka.Player();
  await player.attach(video);
  player.configure({
    drm: {
      servers: {
        'org.w3.clearkey': start.license_url.replace('{system}', 'clearkey'),
        'com.widevine.alpha': start.license_url.replace('{system}', 'clearkey'),
      },
      keySystemsMapping: options.hlsClearKey ? {'com.widevine.alpha': 'org.w3.clearkey'} : {},
      initDataTransform: options.hlsClearKey ? commonPssh : undefined,
    },
    streaming: {bufferingGoal: 3, rebufferingGoal: 1, retryParameters: {maxAttempts: 1}},
  });
  const RT = shaka.net.NetworkingEngine.RequestType;
  player.getNetworkingEngine().registerRequestFilter((type, request) => {
    request.headers['Authorization'] = 'Bearer ' + d.grant;
    request.headers['X-Device-Id'] = options.device;
    if (type === RT.LICENSE) {
      d.licenses.push(JSON.parse(new TextDecoder().decode(request.body)).kids);
      d.licenseTimes.push(video.currentTime);
    }
  });
  player.addEventListener('error', (e) => d.errors.push(e.detail.code));
  let seq = 0;
  d.timer = setInterval(async () => {
    const r = await fetch(start.heartbeat_url, {method: 'POST', headers: {
      'Authorization': 'Bearer ' + d.grant, 'X-Device-Id': options.device,
      'Content-Type': 'application/json'},
      body: JSON.stringify({seq: seq++, position_seconds: video.currentTime, watched_seconds: 1})});
    const body = await r.json();
    if (r.ok) { d.grant = body.token; d.beats.push(body.key_periods); }
    else { d.refusals.push(body.code); clearInterval(d.timer); }
  }, 1000);
  d.player = player; d.video = video;
  try { await player.load(url); } catch (e) { d.errors.push(e.code); return false; }
  video.playbackRate = options.rate || 1;  // twice as fast where only the key changes matter
  video.play();
  return true;
};
true
"""


def _chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None or not shaka_path().is_file():
        message = "chromium or Shaka Player missing (run ./run player-setup)"
        if IN_CI:
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return found


def _start(server: LiveServer, viewing: Viewing) -> dict[str, Any]:
    response = httpx.post(
        f"{server.base_url}/v1/playback/sessions",
        json={"ticket_id": viewing.ticket_id, "take_over": True},
        headers=viewing.headers,
        timeout=10,
    )
    assert response.status_code == 201, response.text
    started = dict(response.json())
    for name in ("heartbeat_url", "dash_manifest_url", "master_playlist_url"):
        started[name] = urlsplit(started[name]).path
    started["license_url"] = "/v1/playback/license/{system}"
    return started


async def _wait(tools: DevTools, expression: str, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = await tools.js(expression)
        if value:
            return value
        await asyncio.sleep(0.2)
    state = await tools.js(
        "JSON.stringify({t: window.drm.video && window.drm.video.currentTime,"
        " errors: window.drm.errors, licenses: window.drm.licenses,"
        " refusals: window.drm.refusals, beats: window.drm.beats.slice(-3)})"
    )
    raise AssertionError(f"timed out waiting for {what}: {state}")


async def _journey(
    port: int, server: LiveServer, viewing: Viewing, configure: Any
) -> dict[str, Any]:
    import websockets

    seen: dict[str, Any] = {}
    targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=10).json()
    page = next(t for t in targets if t["type"] == "page")
    async with websockets.connect(page["webSocketDebuggerUrl"], max_size=None) as ws:
        tools = DevTools(ws)
        await tools.call("Page.enable")
        await tools.call("Page.navigate", url=f"{server.base_url}/play")
        await _wait(tools, "document.readyState === 'complete'", 20, "the page")
        await tools.js(HARNESS)
        device = json.dumps(viewing.device_id)
        for kind, url_name, hls_clearkey in (
            ("dash", "dash_manifest_url", "false"),
            ("hls", "master_playlist_url", "true"),
        ):
            started = _start(server, viewing)
            url = json.dumps(started[url_name])
            loaded = await tools.js(
                f"drmPlay({url}, {json.dumps(started)},"
                f" {{device: {device}, hlsClearKey: {hls_clearkey}, rate: 2}})"
            )
            assert loaded, await tools.js("JSON.stringify(window.drm.errors)")
            await _wait(tools, "window.drm.video.currentTime > 4.3", 60, f"{kind}: period 3")
            print(
                kind,
                await tools.js("JSON.stringify([window.drm.licenses, window.drm.licenseTimes])"),
            )
            seen[kind] = await tools.js(
                "({errors: window.drm.errors, licenses: window.drm.licenses,"
                " times: window.drm.licenseTimes,"
                " variants: window.drm.player.getVariantTracks().map(t => t.height)})"
            )
        # A refunded ticket: a session whose grant opens one key period at a time and lives
        # 2 s. The refund ends the session at the next heartbeat; the grant runs out; the
        # second period's license is refused and playback stops at the key change (2 s).
        configure(playback_grant_seconds="2", playback_key_periods_around="0")
        started = _start(server, viewing)
        url = json.dumps(started["dash_manifest_url"])
        assert await tools.js(
            f"drmPlay({url}, {json.dumps(started)}, {{device: {device}, hlsClearKey: false}})"
        )
        await _wait(tools, "window.drm.video.currentTime > 0.5", 30, "the refunded ticket to play")
        refund(viewing.client, viewing)
        await _wait(tools, "window.drm.refusals.length > 0", 20, "the refused heartbeat")
        await _wait(tools, "window.drm.video.currentTime > 1.8", 20, "the first key change")
        await asyncio.sleep(2.5)  # the grant has run out; playback had 2.5 s to go on, if it could
        seen["refunded"] = await tools.js(
            "({t: window.drm.video.currentTime, errors: window.drm.errors,"
            " refusals: window.drm.refusals, licenses: window.drm.licenses})"
        )
        license_url = json.dumps(started["license_url"].replace("{system}", "clearkey"))
        seen["late_license"] = await tools.js(
            f"fetch({license_url}, {{method: 'POST', headers: {{'Authorization': 'Bearer ' +"
            f" window.drm.grant, 'X-Device-Id': {device}}}, body: JSON.stringify("
            "{kids: window.drm.licenses[0], type: 'temporary'})})"
            ".then(async r => [r.status, (await r.json()).code])"
        )
    return seen


@pytest.mark.embedded_only  # a browser journey: once is enough
def test_shaka_player_plays_the_cbcs_release_with_clearkey_licenses(
    drm_live_server: LiveServer, drm_viewing: Viewing, configure: Any
) -> None:
    chromium = _chromium()
    # Shaka Player asks for every key period's license when it loads a manifest (measured:
    # all three at 0 s), so the grant opens all of them here; the refunded session below
    # opens one at a time.
    configure(playback_key_periods_around="2")
    port = free_port()
    profile = tempfile.mkdtemp(prefix="chromium-")
    argv = [
        chromium,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--autoplay-policy=no-user-gesture-required",
        "--mute-audio",
        f"--user-data-dir={profile}",
        f"--remote-debugging-port={port}",
        "about:blank",
    ]
    browser = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/json/version", timeout=1)
                break
            except httpx.HTTPError:
                time.sleep(0.2)
        seen = asyncio.run(
            asyncio.wait_for(_journey(port, drm_live_server, drm_viewing, configure), timeout=240)
        )
    finally:
        browser.terminate()
        try:
            browser.wait(timeout=10)
        except subprocess.TimeoutExpired:
            browser.kill()
        shutil.rmtree(profile, ignore_errors=True)
    kids = {
        base64.urlsafe_b64encode(bytes.fromhex(k)).rstrip(b"=").decode()
        for k in drm_viewing.key_ids
    }
    for kind in ("dash", "hls"):
        assert seen[kind]["errors"] == [], seen
        asked = {kid for request in seen[kind]["licenses"] for kid in request}
        assert asked == kids, seen  # every key period's key came from a license
    refunded = seen["refunded"]
    assert refunded["refusals"] == ["ticket_refunded"], seen
    # Stopped at the first key change (2 s), give or take the last frame and audio packet.
    assert 1.8 < refunded["t"] < 2.5, seen
    assert seen["late_license"] == [401, "grant_expired"], seen
