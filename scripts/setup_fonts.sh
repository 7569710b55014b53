#!/usr/bin/env bash
# Fetches a font with Chinese, Japanese and Korean glyphs for box-office charts in PNG
# (boxoffice/charts.py; SVG keeps text as text and needs none): Debian's fonts-wqy-microhei,
# unpacked into .cache/fonts without installing the package (no root needed).
# Idempotent; quick when it is already there. Called by ./run ops-setup and CI.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=".cache/fonts"
FONT="$DEST/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"

if [ -f "$FONT" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
  echo "setup_fonts: needs apt-get and dpkg-deb (Debian or Ubuntu); PNG charts will draw CJK titles as boxes" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && apt-get download fonts-wqy-microhei >/dev/null 2>&1); then
  apt-get update -qq
  (cd "$work" && apt-get download fonts-wqy-microhei >/dev/null)
fi
mkdir -p "$DEST"
dpkg-deb -x "$work"/fonts-wqy-microhei_*.deb "$DEST"
ls -l "$FONT"
