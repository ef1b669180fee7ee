import crypto from "node:crypto";
import type { Db } from "../db";
import { recordEvent } from "../events";
import { nowIso } from "../ids";
import { formatElapsed } from "./propagation";
import { DnsProblem } from "./provider";
import type { DnsSolver } from "./solver";

// Runs the zone tests the console queued (Settings → DNS → Test): the same steps as a DNS-01
// challenge, each recorded as an event so that the page shows it as it happens.

const TEST_LEASE_MS = 60_000;

export async function runQueuedZoneTests(db: Db, solver: DnsSolver, workerId: string, now: () => Date = () => new Date()): Promise<number> {
  const queued = await db.selectFrom("dns_tests").select("id").where("status", "=", "queued").orderBy("created_at").limit(4).execute();
  // A worker that died mid-test leaves "running" with a lapsed lease: that test failed.
  await db
    .updateTable("dns_tests")
    .set({ status: "failed", message: "the worker running this test stopped; run it again", finished_at: nowIso(now()) })
    .where("status", "=", "running")
    .where("lease_expires_at", "<", nowIso(now()))
    .execute();
  let ran = 0;
  for (const { id } of queued) {
    const claimed = await db
      .updateTable("dns_tests")
      .set({ status: "running", lease_owner: workerId, lease_expires_at: nowIso(new Date(now().getTime() + solver.propagationTimeoutMs + TEST_LEASE_MS)) })
      .where("id", "=", id)
      .where("status", "=", "queued")
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) !== 1) continue;
    await runZoneTest(db, solver, id, now);
    ran++;
  }
  return ran;
}

async function runZoneTest(db: Db, solver: DnsSolver, testId: string, now: () => Date) {
  const test = await db.selectFrom("dns_tests").selectAll().where("id", "=", testId).executeTakeFirstOrThrow();
  const credential = await db.selectFrom("dns_credentials").select(["id", "name"]).where("id", "=", test.credential_id).executeTakeFirst();
  const detail = { credentialId: test.credential_id, testId, zone: test.zone };
  const event = (type: string, message: string, severity: "info" | "warning" | "error" = "info", extra: Record<string, unknown> = {}) =>
    recordEvent(db, { type, severity, message, detail: { ...detail, ...extra } }, now());
  const fqdn = `_acme-challenge.${test.zone}`;
  const value = `portcullis-test-${crypto.randomBytes(9).toString("base64url")}`;
  let outcome: { status: "passed" | "failed"; message: string };
  try {
    if (!credential) throw new DnsProblem("token_invalid", "the credential was deleted", "Add it again in Settings → DNS.", "", { retryable: false });
    await event("dns.test_started", `Testing "${credential.name}" on ${test.zone}: creating a TXT record at ${fqdn}`);
    const record = await solver.present({ testId }, test.credential_id, test.zone, value, fqdn);
    await event("dns.test_record_created", `Created the TXT record ${fqdn} in the ${record.providerLabel} zone ${record.zone.name}${record.adopted ? " (an identical record existed and is reused)" : ""}`);
    const { elapsedMs } = await solver.waitForPropagation([record], { onProgress: (message, p) => event("dns.test_propagation", message, "info", { seen: p.seen, total: p.total, missing: p.missing }) });
    outcome = { status: "passed", message: `${credential.name} can publish DNS-01 answers in ${test.zone}: the record was created, seen by every name server after ${formatElapsed(elapsedMs)}, and deleted` };
  } catch (err) {
    const problem = err instanceof DnsProblem ? err : undefined;
    const why = problem ? `${problem.summary} — ${problem.fix}${problem.raw ? ` (${problem.raw})` : ""}` : "an unexpected error; the details are in the worker's log";
    outcome = { status: "failed", message: `The test on ${test.zone} failed: ${why}` };
  }
  const released = await solver.release({ testId }).catch((err: unknown) => ({ removed: [], kept: [], failed: [{ fqdn, problem: err instanceof DnsProblem ? err : new DnsProblem("provider_error", String(err), "", "", { retryable: true }) }] }));
  if (released.removed.length || released.kept.length) await event("dns.test_record_deleted", `Deleted the TXT record ${fqdn}`);
  for (const f of released.failed) {
    await event("dns.test_record_deleted", `Could not delete the TXT record ${f.fqdn} yet: ${f.problem.summary}${f.problem.raw ? ` (${f.problem.raw})` : ""}; the worker tries again every minute`, "warning");
    if (outcome.status === "passed") outcome = { status: "failed", message: `The record was created and seen, but deleting it failed: ${f.problem.summary}. The worker tries again every minute.` };
  }
  await db.updateTable("dns_tests").set({ status: outcome.status, message: outcome.message, finished_at: nowIso(now()), lease_owner: null, lease_expires_at: null }).where("id", "=", testId).execute();
  await event(outcome.status === "passed" ? "dns.test_passed" : "dns.test_failed", outcome.message, outcome.status === "passed" ? "info" : "error");
}
