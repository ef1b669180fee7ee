#!/usr/bin/env bash
# The whole suite, as `npm test` and CI run it: type check, unit and data-layer tests on SQLite and
# PostgreSQL, the production build, and the Playwright suite in Debian's Chromium.
set -uo pipefail
cd "$(dirname "$0")/.."
export NEXT_TELEMETRY_DISABLED=1
mkdir -p .tmp

: "${PORTCULLIS_TEST_POSTGRES_URL:=postgres://postgres@127.0.0.1:5432/postgres}"
if node -e '
  const { Client } = require("pg");
  const c = new Client({ connectionString: process.argv[1], connectionTimeoutMillis: 3000 });
  c.connect().then(() => c.end()).then(() => process.exit(0), () => process.exit(1));
' "$PORTCULLIS_TEST_POSTGRES_URL"; then
  export PORTCULLIS_TEST_POSTGRES_URL
  echo "== data-layer tests will also run on PostgreSQL ($PORTCULLIS_TEST_POSTGRES_URL)"
elif [ "${CI:-}" = "true" ]; then
  echo "PostgreSQL is not reachable at $PORTCULLIS_TEST_POSTGRES_URL; CI requires it (set PORTCULLIS_TEST_POSTGRES_URL)." >&2
  exit 1
else
  unset PORTCULLIS_TEST_POSTGRES_URL
  echo "!! PostgreSQL is not reachable: the data-layer tests run on SQLite only" >&2
fi

step() { echo; echo "== $*"; }

step "type check"
npx tsc --noEmit || exit 1

step "unit and data-layer tests"
npx vitest run --reporter=default --reporter=json --outputFile=.tmp/vitest.json
unit=$?

step "production build"
rm -rf .next
npx next build || exit 1

step "end-to-end tests (Playwright, Debian Chromium)"
PLAYWRIGHT_JSON_OUTPUT_NAME=.tmp/playwright.json npx playwright test --reporter=list,json
e2e=$?

node -e '
  const fs = require("fs");
  const read = (f) => { try { return JSON.parse(fs.readFileSync(f, "utf8")); } catch { return null; } };
  const v = read(".tmp/vitest.json"), p = read(".tmp/playwright.json");
  const passed = (v?.numPassedTests ?? 0) + (p?.stats?.expected ?? 0);
  const failed = (v ? v.numFailedTests : 1) + (p ? (p.stats.unexpected ?? 0) + (p.stats.flaky ?? 0) : 1);
  const skipped = (v?.numPendingTests ?? 0) + (p?.stats?.skipped ?? 0);
  console.log(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
'
[ "$unit" -eq 0 ] && [ "$e2e" -eq 0 ]
