import type { Keyring } from "../crypto/seal";
import type { Db } from "../db";
import { nowIso } from "../ids";
import { MAX_ATTEMPTS, RETRY_DELAYS_MS, secretContext } from "./constants";
import { postJson, USER_AGENT } from "./http";
import { SIGNATURE_HEADER, signatureHeader } from "./signature";
import { getDelivery, type DeliveryView } from "./webhooks";

// One delivery attempt: claimed with a lease (so that any number of workers, and the console's Test
// button, never send the same delivery twice at once), POSTed with a 10 s timeout, and its result
// stored: delivered on 2xx, otherwise retried after 30 s, 2 min, 10 min, 1 h and 6 h, then failed.

export type DeliveryOptions = { workerId: string; now?: () => Date; leaseMs?: number; timeoutMs?: number };

const DEFAULT_LEASE_MS = 60_000;

async function claim(db: Db, id: string, opts: DeliveryOptions): Promise<boolean> {
  const now = opts.now?.() ?? new Date();
  const result = await db
    .updateTable("webhook_deliveries")
    .set({ lease_owner: opts.workerId, lease_expires_at: nowIso(new Date(now.getTime() + (opts.leaseMs ?? DEFAULT_LEASE_MS))) })
    .where("id", "=", id)
    .where("status", "=", "pending")
    .where("next_attempt_at", "<=", nowIso(now))
    .where((eb) => eb.or([eb("lease_expires_at", "is", null), eb("lease_expires_at", "<", nowIso(now))]))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Sends one delivery if it is due and nobody else holds it; answers its state afterwards (undefined: not sent by us). */
export async function attemptDelivery(db: Db, keyring: Keyring, id: string, opts: DeliveryOptions): Promise<DeliveryView | undefined> {
  if (!(await claim(db, id, opts))) return undefined;
  const row = await db
    .selectFrom("webhook_deliveries")
    .innerJoin("webhooks", "webhooks.id", "webhook_deliveries.webhook_id")
    .select(["webhook_deliveries.payload", "webhook_deliveries.type", "webhook_deliveries.attempts", "webhook_deliveries.problem_key", "webhooks.id as webhook_id", "webhooks.url", "webhooks.sealed_secret", "webhooks.enabled"])
    .where("webhook_deliveries.id", "=", id)
    .executeTakeFirst();
  const finish = async (values: { status: "pending" | "delivered" | "failed"; attempts?: number; next_attempt_at?: string | null; last_status_code?: number | null; last_error: string | null; last_duration_ms?: number | null }) => {
    await db
      .updateTable("webhook_deliveries")
      .set({ ...values, lease_owner: null, lease_expires_at: null, updated_at: nowIso(opts.now?.() ?? new Date()) })
      .where("id", "=", id)
      .where("lease_owner", "=", opts.workerId)
      .execute();
    return getDelivery(db, id);
  };
  if (!row) return finish({ status: "failed", next_attempt_at: null, last_error: "the webhook was deleted before this could be sent" });
  // A test may try a webhook before it is enabled; alerts for a disabled one are dropped.
  if (row.enabled !== 1 && !row.problem_key.startsWith("test:")) return finish({ status: "failed", next_attempt_at: null, last_error: "not sent: the webhook was disabled" });

  let secret: string;
  try {
    secret = keyring.open(row.sealed_secret, secretContext(row.webhook_id));
  } catch (err) {
    return finish({ status: "failed", next_attempt_at: null, last_error: `not sent: the signing secret cannot be opened (${(err as Error).message}); rotate the secret` });
  }
  const result = await postJson(
    row.url,
    row.payload,
    {
      "Content-Type": "application/json",
      "User-Agent": USER_AGENT,
      [SIGNATURE_HEADER]: signatureHeader(secret, row.payload),
      "X-Portcullis-Event": row.type,
      "X-Portcullis-Delivery": id,
    },
    opts.timeoutMs,
  );
  const attempts = Number(row.attempts) + 1;
  const delivered = result.statusCode !== null && result.statusCode >= 200 && result.statusCode < 300;
  // A test is one attempt: the operator is looking at its result now.
  const lastAttempt = attempts >= MAX_ATTEMPTS || row.problem_key.startsWith("test:");
  const now = opts.now?.() ?? new Date();
  return finish({
    status: delivered ? "delivered" : lastAttempt ? "failed" : "pending",
    attempts,
    next_attempt_at: delivered || lastAttempt ? null : nowIso(new Date(now.getTime() + RETRY_DELAYS_MS[attempts - 1])),
    last_status_code: result.statusCode,
    last_error: result.error,
    last_duration_ms: result.durationMs,
  });
}

/** Every delivery that is due now, a few at a time; answers how many were sent by this worker. */
export async function runDueDeliveries(db: Db, keyring: Keyring, opts: DeliveryOptions & { limit?: number; concurrency?: number }): Promise<number> {
  const now = nowIso(opts.now?.() ?? new Date());
  const due = await db
    .selectFrom("webhook_deliveries")
    .select("id")
    .where("status", "=", "pending")
    .where("next_attempt_at", "<=", now)
    .where((eb) => eb.or([eb("lease_expires_at", "is", null), eb("lease_expires_at", "<", now)]))
    .orderBy("next_attempt_at")
    .limit(opts.limit ?? 50)
    .execute();
  let sent = 0;
  let next = 0;
  const workers = Array.from({ length: Math.min(opts.concurrency ?? 8, due.length) }, async () => {
    while (next < due.length) {
      const { id } = due[next++];
      if (await attemptDelivery(db, keyring, id, opts)) sent++;
    }
  });
  await Promise.all(workers);
  return sent;
}

/** When the next pending delivery is due (for the dispatcher's timer). */
export async function nextDeliveryDue(db: Db): Promise<Date | undefined> {
  const row = await db.selectFrom("webhook_deliveries").select((eb) => eb.fn.min("next_attempt_at").as("at")).where("status", "=", "pending").executeTakeFirst();
  return row?.at ? new Date(row.at) : undefined;
}
