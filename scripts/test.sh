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
npx vitest run --reporter=default --reporter=json --outputFile=.tmp/vitest.json 2>&1 | tee .tmp/vitest.log
unit=${PIPESTATUS[0]}

step "production build"
rm -rf .next
npx next build || exit 1

step "end-to-end tests (Playwright, Debian Chromium)"
PLAYWRIGHT_JSON_OUTPUT_NAME=.tmp/playwright.json npx playwright test --reporter=list,json
e2e=$?

node -e '
  const fs = require("fs");
  const read = (f) => { try { return JSON.parse(fs.readFileSync(f, "utf8")); } catch { return null; } };
  const [unitCode, e2eCode] = process.argv.slice(1).map(Number);
  const v = read(".tmp/vitest.json"), p = read(".tmp/playwright.json");
  const passed = (v?.numPassedTests ?? 0) + (p?.stats?.expected ?? 0);
  // A suite whose beforeAll fails counts its tests as skipped, not failed; an error outside any test
  // fails the run with no failed test at all. Both count here, so "0 failed" never goes with a red run.
  const hookFailures = (v?.testResults ?? []).filter((f) => f.status === "failed" && !f.assertionResults.some((t) => t.status === "failed")).length;
  const unitFailed = v ? v.numFailedTests + hookFailures : 1;
  const e2eFailed = p ? (p.stats.unexpected ?? 0) + (p.stats.flaky ?? 0) + (p.errors?.length ?? 0) : 1;
  const failed = unitFailed + e2eFailed + (unitCode !== 0 && unitFailed === 0) + (e2eCode !== 0 && e2eFailed === 0);
  const skipped = (v?.numPendingTests ?? 0) + (p?.stats?.skipped ?? 0);
  if (unitCode !== 0) {
    // Repeat the failure report of the unit run here, at the end, where a log cut to its tail still shows it.
    const log = fs.existsSync(".tmp/vitest.log") ? fs.readFileSync(".tmp/vitest.log", "utf8").replace(/\x1b\[[0-9;]*m/g, "").split("\n") : [];
    const start = log.findIndex((line) => /⎯ (Failed|Unhandled)/.test(line));
    const end = log.findIndex((line, i) => i > start && /^\s*Test Files /.test(line));
    console.log(`\nunit and data-layer tests failed (vitest exit code ${unitCode})` + (start < 0 ? "; see its output above" : ":"));
    if (start >= 0) console.log(log.slice(start, end < 0 ? undefined : end).slice(0, 150).join("\n"));
  }
  if (e2eCode !== 0) console.log(`\nend-to-end tests failed (Playwright exit code ${e2eCode}); its failures are listed above`);
  console.log(`\ntests: ${passed} passed, ${failed} failed, ${skipped} skipped`);
' "$unit" "$e2e"
[ "$unit" -eq 0 ] && [ "$e2e" -eq 0 ]
