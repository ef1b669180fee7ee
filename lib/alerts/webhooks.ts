import { z } from "zod";
import { writeAudit, type Actor } from "../audit";
import type { Keyring } from "../crypto/seal";
import type { Db } from "../db";
import { isUniqueViolation } from "../db/connection";
import type { EventSeverity, WebhookDeliveriesTable, WebhooksTable } from "../db/schema";
import { AppError, notFound } from "../errors";
import { newId, nowIso } from "../ids";
import { ALERT_EVENT_LABELS, ALERT_EVENT_TYPES, secretContext, type AlertEventType } from "./constants";
import { newWebhookSecret } from "./signature";

// Webhooks: where alerts go. The signing secret is made here, shown once (in the create and rotate
// answers), sealed at rest with context `webhook-secret:<id>`, and never returned again.

export type WebhookView = {
  id: string;
  name: string;
  url: string;
  eventTypes: AlertEventType[];
  enabled: boolean;
  createdAt: string;
  updatedAt: string;
};

/** The create and rotate answers: the only ones that carry the secret. */
export type WebhookWithSecret = WebhookView & { secret: string };

export type DeliveryView = {
  id: string;
  webhookId: string;
  eventId: number | null;
  type: string;
  problemKey: string;
  test: boolean;
  status: WebhookDeliveriesTable["status"];
  attempts: number;
  nextAttemptAt: string | null;
  lastStatusCode: number | null;
  lastError: string | null;
  lastDurationMs: number | null;
  createdAt: string;
  updatedAt: string;
};

/** The JSON body a receiver gets. */
export type AlertPayload = {
  id: string;
  type: string;
  problemKey: string;
  occurredAt: string;
  severity: EventSeverity;
  message: string;
  certificate?: { id: string; name: string; domains: string[]; notAfter: string | null };
  listener?: { id: string; name: string };
  detail?: unknown;
  test?: true;
};

const nameField = z
  .string({ error: 'give the webhook a name, like "ops Slack relay"' })
  .trim()
  .min(1, 'give the webhook a name, like "ops Slack relay"')
  .max(100, "use at most 100 characters")
  .regex(/^[^\u0000-\u001f]*$/, "the name may not contain control characters");

/** http or https, no credentials in it (use the signature instead); loopback and private addresses are fine: Portcullis is self-hosted. */
export function webhookUrlProblem(value: string): string | undefined {
  if (!value) return "give the URL that receives the alerts, like https://hooks.example.com/portcullis";
  if (value.length > 2000) return "the URL is longer than 2000 characters";
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return "this is not a URL: write it in full, like https://hooks.example.com/portcullis";
  }
  if (/\s/.test(value)) return "the URL contains spaces or line breaks: encode a space in it as %20";
  if (url.protocol !== "https:" && url.protocol !== "http:") return `the URL must start with https:// or http:// (not ${url.protocol}//)`;
  if (url.username || url.password) return "remove the user name and password from the URL: receivers check the X-Portcullis-Signature header instead";
  if (!url.hostname) return "the URL has no host name";
  return undefined;
}

const urlField = z
  .string({ error: "give the URL that receives the alerts, like https://hooks.example.com/portcullis" })
  .trim()
  .superRefine((v, ctx) => {
    const problem = webhookUrlProblem(v);
    if (problem) ctx.addIssue({ code: "custom", message: problem });
  });

const eventTypesField = z
  .array(z.enum(ALERT_EVENT_TYPES, { error: `each event type must be one of: ${ALERT_EVENT_TYPES.join(", ")}` }), { error: `give the event types as a list, from: ${ALERT_EVENT_TYPES.join(", ")}` })
  .min(1, "choose at least one event type")
  .transform((v) => ALERT_EVENT_TYPES.filter((t) => v.includes(t)));

const enabledField = z.boolean({ error: "enabled must be true or false" });

export const webhookInputSchema = z.object({
  name: nameField,
  url: urlField,
  eventTypes: eventTypesField.optional(),
  enabled: enabledField.optional(),
});

export const webhookUpdateSchema = z.object({
  name: nameField.optional(),
  url: urlField.optional(),
  eventTypes: eventTypesField.optional(),
  enabled: enabledField.optional(),
});

function requireObject(input: unknown, example: string) {
  if (typeof input !== "object" || input === null || Array.isArray(input)) throw new AppError("bad_request", `the body must be a JSON object, like ${example}`);
}

const nameConflict = (name: string) => new AppError("conflict", `there is already a webhook named "${name}"`, { name: ["pick another name"] });

function parseEventTypes(text: string): AlertEventType[] {
  try {
    const list = JSON.parse(text) as string[];
    return ALERT_EVENT_TYPES.filter((t) => list.includes(t));
  } catch {
    return [];
  }
}

function toView(row: WebhooksTable): WebhookView {
  return { id: row.id, name: row.name, url: row.url, eventTypes: parseEventTypes(row.event_types), enabled: row.enabled === 1, createdAt: row.created_at, updatedAt: row.updated_at };
}

export function toDeliveryView(row: WebhookDeliveriesTable): DeliveryView {
  return {
    id: row.id,
    webhookId: row.webhook_id,
    eventId: row.event_id === null ? null : Number(row.event_id),
    type: row.type,
    problemKey: row.problem_key,
    test: row.problem_key.startsWith("test:"),
    status: row.status,
    attempts: Number(row.attempts),
    nextAttemptAt: row.status === "pending" ? row.next_attempt_at : null,
    lastStatusCode: row.last_status_code === null ? null : Number(row.last_status_code),
    lastError: row.last_error,
    lastDurationMs: row.last_duration_ms === null ? null : Number(row.last_duration_ms),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

export async function listWebhooks(db: Db): Promise<WebhookView[]> {
  return (await db.selectFrom("webhooks").selectAll().orderBy("name").execute()).map(toView);
}

export async function getWebhook(db: Db, id: string): Promise<WebhookView | undefined> {
  const row = await db.selectFrom("webhooks").selectAll().where("id", "=", id).executeTakeFirst();
  return row ? toView(row) : undefined;
}

export async function requireWebhook(db: Db, id: string): Promise<WebhookView> {
  const webhook = await getWebhook(db, id);
  if (!webhook) throw notFound(`webhook "${id}"`);
  return webhook;
}

function validationFailed(what: string, error: z.ZodError): AppError {
  const fields = z.flattenError(error).fieldErrors as Record<string, string[]>;
  const first = Object.entries(fields)[0];
  return new AppError("validation_failed", `${what}: ${first ? `${first[0]}: ${first[1][0]}` : "check the highlighted fields"}`, fields);
}

export async function createWebhook(db: Db, keyring: Keyring, actor: Actor, input: unknown, now = new Date()): Promise<WebhookWithSecret> {
  requireObject(input, '{"name":"ops","url":"https://hooks.example.com/portcullis","eventTypes":["tls.renewal_failed"]}');
  const parsed = webhookInputSchema.safeParse(input);
  if (!parsed.success) throw validationFailed("the webhook was not saved", parsed.error);
  const v = parsed.data;
  const taken = await db.selectFrom("webhooks").select("id").where("name", "=", v.name).executeTakeFirst();
  if (taken) throw nameConflict(v.name);
  const id = newId("whk");
  const secret = newWebhookSecret();
  const eventTypes = v.eventTypes ?? [...ALERT_EVENT_TYPES];
  const at = nowIso(now);
  try {
    await db
      .insertInto("webhooks")
      .values({ id, name: v.name, url: v.url, sealed_secret: keyring.seal(secret, secretContext(id)), event_types: JSON.stringify(eventTypes), enabled: v.enabled === false ? 0 : 1, created_by: actor.id, created_at: at, updated_at: at })
      .execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw nameConflict(v.name);
    throw err;
  }
  await writeAudit(db, actor, "webhook.create", { type: "webhook", id }, { name: v.name, url: redactUrl(v.url), eventTypes, enabled: v.enabled !== false });
  return { ...(await requireWebhook(db, id)), secret };
}

export async function updateWebhook(db: Db, actor: Actor, id: string, input: unknown, now = new Date()): Promise<WebhookView> {
  const current = await requireWebhook(db, id);
  requireObject(input, '{"enabled":false} or {"eventTypes":["tls.expiring"]}');
  const parsed = webhookUpdateSchema.safeParse(input);
  if (!parsed.success) throw validationFailed("the webhook was not changed", parsed.error);
  const v = parsed.data;
  if (v.name === undefined && v.url === undefined && v.eventTypes === undefined && v.enabled === undefined) {
    throw new AppError("validation_failed", "nothing to change: send name, url, eventTypes or enabled");
  }
  if (v.name !== undefined && v.name !== current.name) {
    const taken = await db.selectFrom("webhooks").select("id").where("name", "=", v.name).where("id", "!=", id).executeTakeFirst();
    if (taken) throw nameConflict(v.name);
  }
  const values: Partial<WebhooksTable> = { updated_at: nowIso(now) };
  if (v.name !== undefined) values.name = v.name;
  if (v.url !== undefined) values.url = v.url;
  if (v.eventTypes !== undefined) values.event_types = JSON.stringify(v.eventTypes);
  if (v.enabled !== undefined) values.enabled = v.enabled ? 1 : 0;
  try {
    await db.updateTable("webhooks").set(values).where("id", "=", id).execute();
  } catch (err) {
    if (isUniqueViolation(err)) throw nameConflict(v.name ?? current.name);
    throw err;
  }
  await writeAudit(db, actor, "webhook.update", { type: "webhook", id }, { name: v.name ?? current.name, ...(v.url !== undefined ? { url: redactUrl(v.url) } : {}), ...(v.eventTypes ? { eventTypes: v.eventTypes } : {}), ...(v.enabled !== undefined ? { enabled: v.enabled } : {}) });
  return requireWebhook(db, id);
}

/** A new secret; the old one stops working at once. */
export async function rotateWebhookSecret(db: Db, keyring: Keyring, actor: Actor, id: string, now = new Date()): Promise<WebhookWithSecret> {
  const current = await requireWebhook(db, id);
  const secret = newWebhookSecret();
  await db.updateTable("webhooks").set({ sealed_secret: keyring.seal(secret, secretContext(id)), updated_at: nowIso(now) }).where("id", "=", id).execute();
  await writeAudit(db, actor, "webhook.rotate_secret", { type: "webhook", id }, { name: current.name });
  return { ...(await requireWebhook(db, id)), secret };
}

export async function deleteWebhook(db: Db, actor: Actor, id: string): Promise<WebhookView> {
  const current = await requireWebhook(db, id);
  await db.transaction().execute(async (trx) => {
    await trx.deleteFrom("webhook_deliveries").where("webhook_id", "=", id).execute();
    await trx.deleteFrom("webhooks").where("id", "=", id).execute();
  });
  await writeAudit(db, actor, "webhook.delete", { type: "webhook", id }, { name: current.name });
  return current;
}

/** The secret, for signing (the dispatcher); never for an API answer. */
export async function openWebhookSecret(db: Db, keyring: Keyring, id: string): Promise<string | undefined> {
  const row = await db.selectFrom("webhooks").select(["id", "sealed_secret"]).where("id", "=", id).executeTakeFirst();
  return row ? keyring.open(row.sealed_secret, secretContext(row.id)) : undefined;
}

export async function listDeliveries(db: Db, webhookId: string, limit = 50): Promise<DeliveryView[]> {
  const rows = await db
    .selectFrom("webhook_deliveries")
    .selectAll()
    .where("webhook_id", "=", webhookId)
    .orderBy("created_at", "desc")
    .orderBy("id", "desc")
    .limit(Math.max(1, Math.min(limit, 500)))
    .execute();
  return rows.map(toDeliveryView);
}

export async function getDelivery(db: Db, id: string): Promise<DeliveryView | undefined> {
  const row = await db.selectFrom("webhook_deliveries").selectAll().where("id", "=", id).executeTakeFirst();
  return row ? toDeliveryView(row) : undefined;
}

export const testInputSchema = z.object({
  type: z.enum(ALERT_EVENT_TYPES, { error: `type must be one of: ${ALERT_EVENT_TYPES.join(", ")}` }).optional(),
});

/** Queues a test delivery (payload with test: true); the caller sends it at once. */
export async function queueTestDelivery(db: Db, actor: Actor, webhookId: string, input: unknown, now = new Date()): Promise<DeliveryView> {
  const webhook = await requireWebhook(db, webhookId);
  if (input !== undefined && input !== null) requireObject(input, '{"type":"tls.renewal_failed"}');
  const parsed = testInputSchema.safeParse(input ?? {});
  if (!parsed.success) throw validationFailed("the test was not sent", parsed.error);
  const type = parsed.data.type ?? webhook.eventTypes[0] ?? "tls.renewal_failed";
  const id = newId("dlv");
  const at = nowIso(now);
  const payload: AlertPayload = {
    id,
    type,
    problemKey: `test:${id}`,
    occurredAt: at,
    severity: "info",
    message: `Test alert from Portcullis for webhook "${webhook.name}" (${ALERT_EVENT_LABELS[type]}), sent by ${actor.label}`,
    test: true,
  };
  await db
    .insertInto("webhook_deliveries")
    .values({ id, webhook_id: webhookId, event_id: null, problem_key: `test:${id}`, type, payload: JSON.stringify(payload), status: "pending", attempts: 0, next_attempt_at: at, last_status_code: null, last_error: null, last_duration_ms: null, lease_owner: null, lease_expires_at: null, created_at: at, updated_at: at })
    .execute();
  await writeAudit(db, actor, "webhook.test", { type: "webhook", id: webhookId }, { name: webhook.name, type, deliveryId: id });
  return (await getDelivery(db, id))!;
}

/** For the audit log: the URL without its query string (which may carry a receiver's token). */
function redactUrl(value: string): string {
  try {
    const url = new URL(value);
    return url.search ? `${url.origin}${url.pathname}?…` : `${url.origin}${url.pathname}`;
  } catch {
    return "(invalid)";
  }
}
