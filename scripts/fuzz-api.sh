#!/usr/bin/env bash
# Property-based fuzzing of the running HTTP API from its own OpenAPI document, with Schemathesis (installed into
# .venv-tests by scripts/prepare-tests.sh). Starts the service as `npm start` does, on its embedded defaults (a
# Temporal dev server, PGlite, the Cronofy simulator, a generated admin key), but in a scratch folder and on free
# ports, so that it clashes neither with a developer's own `npm start` nor with the tests. Every operation the
# document lists is fuzzed, with the admin key, and must answer: no 5xx, an answer the document allows (status,
# content type, headers, body), and no request accepted without a valid key. Exits non-zero on any failure.
#
#   FUZZ_MAX_EXAMPLES  test cases per operation (default 25)
#   FUZZ_MAX_TIME      Schemathesis's time budget in seconds (default 40); the run is killed 60 s past it
#   FUZZ_SEED          the seed (default: a random one, printed): the same seed generates the same requests, as
#                      far as the time budget lets a run get (with one worker, in the same order too)
#   FUZZ_WORKERS       concurrent Schemathesis workers (default 1: its workers are threads, and Hypothesis parses
#                      source code in them, which CPython 3.11 cannot do from two threads at once: now and then
#                      it raised "AST constructor recursion depth mismatch", a runtime error that failed the run)
#   FUZZ_KEEP          1 keeps the scratch folder (the service's data) after the run
# Schemathesis's reports (JUnit, the events as NDJSON) and the service's log are left in test-artifacts/fuzz-api/.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
venv=$root/.venv-tests
max_examples=${FUZZ_MAX_EXAMPLES:-25}
max_time=${FUZZ_MAX_TIME:-40}
workers=${FUZZ_WORKERS:-1}
seed=${FUZZ_SEED:-$(((RANDOM << 15) | RANDOM))}
reports=$root/test-artifacts/fuzz-api
started=$SECONDS

[ -x "$venv/bin/schemathesis" ] || {
  echo "fuzz: Schemathesis is missing from .venv-tests: run bash scripts/prepare-tests.sh" >&2
  exit 1
}
temporal=$(bash scripts/ensure-temporal.sh)

scratch=$(mktemp -d "${TMPDIR:-/tmp}/fuzz-api.XXXXXX")
service_pid=
stop_service() {
  [ -n "$service_pid" ] || return 0
  if kill -0 "$service_pid" 2>/dev/null; then
    kill -TERM "$service_pid" 2>/dev/null || true
    for _ in $(seq 1 100); do kill -0 "$service_pid" 2>/dev/null || break; sleep 0.2; done
  fi
  # The service and what it started (the Temporal dev server) are one process group of their own (setsid below).
  kill -KILL -- "-$service_pid" 2>/dev/null || true
  wait "$service_pid" 2>/dev/null || true
  service_pid=
}
cleanup() {
  stop_service
  [ "${FUZZ_KEEP:-0}" = 1 ] || rm -rf "$scratch"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# Free loopback ports, no two the same, outside the kernel's range for outgoing connections (harness/freePorts.mjs).
read -r api_port callback_port simulator_port temporal_port ui_port codec_port metrics_port < <(
  node "$root/harness/freePorts.mjs" 7
)
api=http://127.0.0.1:$api_port

# `npm start` (src/main.ts) in the scratch folder: its .data/ (local-secrets.json with the generated API_ADMIN_KEY,
# the PGlite database, the simulator's state, the Temporal dev server's file) is the scratch folder's. Only the
# ports are set, and the key budget lifted (0: no limit) (the fuzzer's thousands of requests would spend the default
# budget in seconds and then meet only 429s): every other variable of the service is left to its default.
echo "fuzz: starting the service in $scratch (API on $api) ..."
(
  cd "$scratch"
  exec env -i PATH="$PATH" HOME="${HOME:-$scratch}" TMPDIR="${TMPDIR:-/tmp}" \
    TEMPORAL_CLI_PATH="$temporal" TSX_TSCONFIG_PATH="$root/tsconfig.json" \
    API_PORT="$api_port" CALLBACK_PORT="$callback_port" SIMULATOR_PORT="$simulator_port" \
    TEMPORAL_DEV_SERVER_PORT="$temporal_port" TEMPORAL_UI_PORT="$ui_port" CODEC_SERVER_PORT="$codec_port" \
    METRICS_BIND_ADDRESS="127.0.0.1:$metrics_port" API_RATE_LIMIT_PER_MINUTE=0 \
    setsid node --import "file://$root/node_modules/tsx/dist/loader.mjs" "$root/src/main.ts"
) >"$scratch/service.log" 2>&1 </dev/null &
service_pid=$!

up() {
  "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' \
    "$api/healthz" 2>/dev/null
}
deadline=$((SECONDS + 180))
until up; do
  if ! kill -0 "$service_pid" 2>/dev/null || [ "$SECONDS" -ge "$deadline" ]; then
    echo "fuzz: the service did not answer on $api/healthz; its log:" >&2
    tail -n 60 "$scratch/service.log" >&2
    echo "fuzz: 0 operations, 0 requests, 1 failures (the service did not start)"
    exit 1
  fi
  sleep 0.5
done
key=$("$venv/bin/python" -c 'import json, sys; print(json.load(open(sys.argv[1]))["API_ADMIN_KEY"])' \
  "$scratch/.data/local-secrets.json")
echo "fuzz: the service answered after $((SECONDS - started)) s"

checks=not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance
checks=$checks,response_schema_conformance,ignored_auth
echo "fuzz: seed $seed; repeat with FUZZ_SEED=$seed FUZZ_MAX_EXAMPLES=$max_examples FUZZ_MAX_TIME=$max_time" \
  "FUZZ_WORKERS=$workers bash scripts/fuzz-api.sh (reports in ${reports#"$root/"}/)"
rm -rf "$reports"
mkdir -p "$reports"
status=0
# The key goes in a header of every request; --output-sanitize hides it in what Schemathesis prints. Schemathesis
# keeps what it learns and the failing cases in .schemathesis/ of the folder it runs in: the reports' own, made
# afresh each run, so that a run depends on nothing but its seed.
(
  cd "$reports"
  exec timeout --kill-after=10 "$((max_time + 60))" "$venv/bin/schemathesis" run "$api/v1/openapi.json" \
    --header "Authorization: Bearer $key" \
    --checks "$checks" \
    --max-examples "$max_examples" --max-time "$max_time" --seed "$seed" --workers "$workers" \
    --generation-database none --request-timeout 20 --continue-on-failure \
    --report junit,ndjson --report-dir "$reports" \
    --output-sanitize true --no-color </dev/null
) || status=$?

stop_service
cp "$scratch/service.log" "$reports/service.log"
# The counts, from the run's events (the ndjson report).
summary=$("$venv/bin/python" - "$reports" <<'EOF'
import json, pathlib, sys
operations, requests, failures = set(), 0, set()
for path in pathlib.Path(sys.argv[1]).glob("*.ndjson"):
    for line in path.read_text().splitlines():
        event = json.loads(line).get("ScenarioFinished")
        if event is None:
            continue
        recorder = event.get("recorder") or {}
        if event.get("phase") != "stateful":
            operations.add(recorder.get("label"))
        # Every request sent, the checks' own (ignored_auth's without a key, with a bad one) included.
        requests += len(recorder.get("interactions") or {})
        for checks in (recorder.get("checks") or {}).values():
            for check in checks:
                if check.get("status") == "failure":
                    failure = (check.get("failure_info") or {}).get("failure") or {}
                    failures.add((failure.get("operation"), failure.get("code"), failure.get("message")))
print(len(operations), requests, len(failures))
EOF
) || summary="? ? ?"
read -r operations requests failures <<<"$summary"
if [ "$status" -ne 0 ] && [ "$failures" = 0 ]; then failures="0 (Schemathesis exited $status)"; fi
echo "fuzz: $operations operations, $requests requests, $failures failures ($((SECONDS - started)) s, seed $seed)"
exit "$status"
