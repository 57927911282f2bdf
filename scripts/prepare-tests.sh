#!/usr/bin/env bash
# npm's pretest: the pinned Temporal CLI, and a Chromium for test/browser.test.ts (Debian's package).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/ensure-temporal.sh >/dev/null

CHROMIUM="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1 && [ "$CHROMIUM" = /usr/bin/chromium ]; then
    echo "installing Chromium with apt-get ..." >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  if [ ! -x "$CHROMIUM" ]; then
    echo "Chromium is missing at $CHROMIUM (needed by test/browser.test.ts)." >&2
    echo "Install it: sudo apt-get update && sudo apt-get install -y chromium, or set CHROMIUM_PATH to a Chromium binary." >&2
    exit 1
  fi
fi
