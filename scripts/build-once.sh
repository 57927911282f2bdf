#!/usr/bin/env bash
# `npm run build` (dist/: the compiled service and its workflow bundles) unless dist/ was built from these very
# sources: the tests that need dist/ (test/package.test.ts, test/workerBundle.test.ts) run in both Node lanes of
# .ci/run in one checkout, and one build serves them all. The caller holds the build lock (flock) around it and
# around its reads of dist/.
set -euo pipefail
cd "$(dirname "$0")/.."
stamp=$(find src simulator scripts tsconfig.json tsconfig.build.json package.json package-lock.json -type f -print0 |
  sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
if [ "$(cat dist/.build-stamp 2>/dev/null)" = "$stamp" ]; then exit 0; fi
rm -f dist/.build-stamp
npm run build
echo "$stamp" >dist/.build-stamp
