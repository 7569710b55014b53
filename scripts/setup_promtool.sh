#!/usr/bin/env bash
# Fetches promtool (Prometheus' rule checker) for tests/ops/test_alert_rules.py from Debian's
# `prometheus` package, unpacked into .cache/promtool without installing the package: a
# package install would also start a Prometheus server on this machine.
# Idempotent; quick when it is already there. Called by ./run ops-setup and CI.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=".cache/promtool"

if [ -x "$DEST/usr/bin/promtool" ]; then
  exit 0
fi
if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
  echo "setup_promtool: needs apt-get and dpkg-deb (Debian or Ubuntu)" >&2
  exit 1
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
if ! (cd "$work" && apt-get download prometheus >/dev/null 2>&1); then
  apt-get update -qq
  (cd "$work" && apt-get download prometheus >/dev/null)
fi
mkdir -p "$DEST"
dpkg-deb -x "$work"/prometheus_*.deb "$DEST"
"$DEST/usr/bin/promtool" --version | head -1
