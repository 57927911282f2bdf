#!/usr/bin/env bash
# npm's pretest: the pinned Temporal CLI, a Chromium for the browser tests (Debian's package), openssl.
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

# test/temporalTls.test.ts makes its certificates with the openssl command.
if ! command -v openssl >/dev/null 2>&1; then
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing openssl with apt-get ..." >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
  fi
  command -v openssl >/dev/null 2>&1 || {
    echo "openssl is missing (needed by test/temporalTls.test.ts): apt-get install -y openssl" >&2
    exit 1
  }
fi
