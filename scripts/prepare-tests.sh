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

# The tests' Python side (test/python/requirements.txt: requests and standardwebhooks for the Python tests,
# Schemathesis for scripts/fuzz-api.sh) in .venv-tests, a git-ignored virtual environment. Installed again only when
# the requirements (or the Python) change: a stamp in the venv keeps their hash. Two runs at once (the CI's two test
# lanes) take turns.
REQUIREMENTS=test/python/requirements.txt
VENV=.venv-tests
# Debian's Python makes a venv only with python3-venv (its ensurepip); installed here when missing, as root.
make_venv() {
  rm -rf "$VENV"
  python3 -m venv "$VENV" >/dev/null 2>&1 && return 0
  if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing python3-venv with apt-get ..." >&2
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    rm -rf "$VENV"
    python3 -m venv "$VENV" && return 0
  fi
  echo "python3 cannot make the virtual environment $VENV: install python3-venv (apt-get install -y python3-venv)" >&2
  return 1
}
(
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$VENV.lock"
    flock 9
  fi
  wanted="$(sha256sum "$REQUIREMENTS" | cut -d' ' -f1) $(python3 --version 2>&1)"
  if [ "$(cat "$VENV/.requirements-stamp" 2>/dev/null)" = "$wanted" ] && "$VENV/bin/python" -c '' 2>/dev/null; then
    exit 0
  fi
  echo "installing $REQUIREMENTS into $VENV ..." >&2
  # A venv of another Python (or none, or a broken one) is made afresh.
  if [ "$("$VENV/bin/python" --version 2>&1)" != "$(python3 --version 2>&1)" ]; then
    make_venv
  fi
  rm -f "$VENV/.requirements-stamp"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input --root-user-action=ignore \
    -r "$REQUIREMENTS" >&2
  echo "$wanted" >"$VENV/.requirements-stamp"
)
