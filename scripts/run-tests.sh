#!/usr/bin/env bash
# `npm test`: the test files (all, or those given) on Node's test runner, three files at a time (TEST_CONCURRENCY):
# much of a test's time is spent waiting on answers, timers and servers, so three keep two cores busy. Without
# TEST_POSTGRES_URL it starts the throwaway PostgreSQL the tests need (scripts/start-test-postgres.sh, on a free
# port) and stops it when the run ends, passed or failed, so that nothing of it outlives the run.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${TEST_POSTGRES_URL:-}" ]; then
  TEST_POSTGRES_URL="$(bash scripts/start-test-postgres.sh)"
  export TEST_POSTGRES_URL
  trap 'bash scripts/start-test-postgres.sh stop >/dev/null 2>&1 || true' EXIT
fi
if [ "$#" -eq 0 ]; then
  # The slowest files first (each a minute or more on a loaded CI machine), the rest after in name order: files start
  # in the order given, and a slow one started last would run on alone at the end while the cores idle.
  slowest=(package demo enterpriseDurability gracefulShutdown enterpriseDowngrade notificationOutage temporalUi restart
    cli cliNpmStart email tracingPropagation apiProcesses apiClient python)
  first=()
  for name in "${slowest[@]}"; do [ -f "test/$name.test.ts" ] && first+=("test/$name.test.ts"); done
  rest=()
  for file in test/*.test.ts; do [[ " ${first[*]} " == *" $file "* ]] || rest+=("$file"); done
  set -- "${first[@]}" "${rest[@]}"
fi
# What the test files share, built once before they start (files that start together would each build it, as none
# finds it built yet): the workflow bundle of the workers they run (harness/workflowBundle.ts), and dist/, which the
# service processes they start run (harness/build.ts, under its own lock).
# Under a lock: CI's two lanes start together in one checkout, and the second then finds them built.
flock "${TMPDIR:-/tmp}/cronofy-downgrade-workflow-bundles.lock" \
  node --import tsx -e "await (await import('./harness/workflowBundle.ts')).testWorkflowBundlePath();
    await (await import('./harness/build.ts')).ensureBuilt();"
node --import tsx --test --test-concurrency="${TEST_CONCURRENCY:-3}" "$@"
