#!/usr/bin/env bash
# Installs what the web player and its end-to-end test need, from package registries only:
#   * hls.js from npm into $POCKETCINEMA_PLAYER_VENDOR_DIR (default .cache/player), which the
#     API serves at /play/hls.min.js (never a CDN at run time);
#   * Shaka Player from npm into the same folder, served at /play/shaka-player.compiled.js
#     (DASH and HLS with EME: the DRM end-to-end test, tests/playback/test_drm_browser.py);
#   * Debian's chromium (headless browser for tests/api/test_player_e2e.py), when running as
#     root and it is missing.
# Idempotent; quick when everything is already there. Called by ./run player-setup and CI.
set -euo pipefail
cd "$(dirname "$0")/.."
VENDOR="${POCKETCINEMA_PLAYER_VENDOR_DIR:-.cache/player}"
HLSJS_VERSION="${HLSJS_VERSION:-1.6}"
SHAKA_VERSION="${SHAKA_VERSION:-5.2}"

if [ ! -f "$VENDOR/node_modules/hls.js/dist/hls.min.js" ]; then
  if ! command -v npm >/dev/null; then
    echo "setup_player: npm is missing (apt-get install -y npm)" >&2
    exit 1
  fi
  mkdir -p "$VENDOR"
  npm install --prefix "$VENDOR" --no-audit --no-fund --loglevel=error "hls.js@$HLSJS_VERSION"
fi

if [ ! -f "$VENDOR/node_modules/shaka-player/dist/shaka-player.compiled.js" ]; then
  if ! command -v npm >/dev/null; then
    echo "setup_player: npm is missing (apt-get install -y npm)" >&2
    exit 1
  fi
  mkdir -p "$VENDOR"
  npm install --prefix "$VENDOR" --no-audit --no-fund --loglevel=error "shaka-player@$SHAKA_VERSION"
fi

if ! command -v chromium >/dev/null; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  else
    echo "setup_player: chromium is missing (as root: apt-get install -y chromium)" >&2
  fi
fi
