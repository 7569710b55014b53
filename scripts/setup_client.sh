#!/usr/bin/env bash
# Installs what the generated-client test needs, from npm only, into
# $POCKETCINEMA_CLIENT_TOOLS_DIR (default .cache/client):
#   * openapi-typescript: TypeScript types from the running API's /openapi.json;
#   * openapi-fetch: the typed fetch client apps build on those types;
#   * typescript: tsc, which type-checks the journey (tests/playback/client/journey.ts).
# Idempotent; quick when everything is already there. Called by ./run client-setup and CI.
set -euo pipefail
cd "$(dirname "$0")/.."
TOOLS="${POCKETCINEMA_CLIENT_TOOLS_DIR:-.cache/client}"
# Major versions pinned: a new major of any of them may generate or check differently.
PACKAGES=("openapi-typescript@7" "openapi-fetch@0.17" "typescript@5" "@types/node@20")

if [ ! -x "$TOOLS/node_modules/.bin/tsc" ] || [ ! -x "$TOOLS/node_modules/.bin/openapi-typescript" ] \
  || [ ! -d "$TOOLS/node_modules/openapi-fetch" ] || [ ! -d "$TOOLS/node_modules/@types/node" ]; then
  if ! command -v npm >/dev/null; then
    echo "setup_client: npm is missing (apt-get install -y npm)" >&2
    exit 1
  fi
  mkdir -p "$TOOLS"
  npm install --prefix "$TOOLS" --no-audit --no-fund --loglevel=error "${PACKAGES[@]}"
fi
