import type { Command } from "commander";
import type { DeliveryView, WebhookView } from "../lib/alerts/webhooks";
import type { Db } from "../lib/db";
import { confirm, withDatabase } from "./context";
import { collect, dash, printJson, printList, UsageError, wholeNumber } from "./output";

/** A webhook by id or by name, or exit code 3. */
async function findWebhook(db: Db, idOrName: string): Promise<WebhookView> {
  const { getWebhook, listWebhooks } = await import("../lib/alerts/webhooks");
  const byId = await getWebhook(db, idOrName);
  if (byId) return byId;
  const byName = (await listWebhooks(db)).find((w) => w.name === idOrName);
  if (byName) return byName;
  const { AppError } = await import("../lib/errors");
  throw new AppError("not_found", `no webhook named or with id "${idOrName}"; list them with: portcullis webhook list`);
}

function result(d: DeliveryView) {
  const code = d.lastStatusCode === null ? "" : `HTTP ${d.lastStatusCode}`;
  return [d.status, code, d.lastError ?? ""].filter(Boolean).join(", ");
}

export function addWebhookCommands(program: Command) {
  const webhook = program.command("webhook").description("webhooks that receive alerts (signed JSON POSTs)");

  webhook
    .command("list")
    .description("list webhooks (signing secrets are never shown again after `webhook add`)")
    .option("--json", "print a JSON array")
    .action(async (opts: { json?: boolean }) => {
      const rows = await withDatabase(async ({ db }) => (await import("../lib/alerts/webhooks")).listWebhooks(db));
      printList(
        rows,
        opts.json,
        "no webhooks; add one with: portcullis webhook add --name NAME --url URL",
        ["ID", "NAME", "ENABLED", "URL", "EVENTS"],
        (w) => [w.id, w.name, w.enabled ? "yes" : "no", w.url, w.eventTypes.join(", ")],
      );
    });

  webhook
    .command("add")
    .description("add a webhook; prints its signing secret this once")
    .requiredOption("--name <name>", 'a name, like "ops Slack relay"')
    .requiredOption("--url <url>", "the http:// or https:// URL that receives the alerts")
    .option("--event <type>", "an alert type to send (repeat for more; default: every type)", collect)
    .option("--disabled", "save it without sending alerts yet (`webhook test` still works)")
    .option("--json", "print the webhook as JSON, with its secret")
    .addHelpText("after", "\nAlert types: tls.renewal_failed, tls.expiring, tls.expired, tls.fallback_served, tls.served_mismatch\n\nExample:\n  portcullis webhook add --name ops --url https://hooks.example.com/portcullis --event tls.renewal_failed --event tls.expiring")
    .action(async (opts: { name: string; url: string; event?: string[]; disabled?: boolean; json?: boolean }) => {
      const created = await withDatabase(async ({ db, keyring }) => {
        const { createWebhook } = await import("../lib/alerts/webhooks");
        const { CLI_ACTOR } = await import("../lib/audit");
        return createWebhook(db, keyring, CLI_ACTOR, { name: opts.name, url: opts.url, eventTypes: opts.event, enabled: opts.disabled ? false : undefined });
      });
      if (opts.json) return printJson(created);
      process.stdout.write(
        `added webhook ${created.name} (${created.id}) → ${created.url}\nevents: ${created.eventTypes.join(", ")}\nsigning secret (shown only now; receivers check X-Portcullis-Signature with it):\n${created.secret}\n`,
      );
    });

  webhook
    .command("test <webhook>")
    .description("send a signed test alert now and print the result (exit 1 if it was not delivered)")
    .option("--type <type>", "the alert type the test pretends to be (default: the webhook's first)")
    .option("--json", "print the delivery as JSON")
    .action(async (ref: string, opts: { type?: string; json?: boolean }) => {
      const sent = await withDatabase(async ({ db, keyring }) => {
        const { getDelivery, queueTestDelivery } = await import("../lib/alerts/webhooks");
        const { attemptDelivery } = await import("../lib/alerts/deliver");
        const { CLI_ACTOR } = await import("../lib/audit");
        const w = await findWebhook(db, ref);
        const queued = await queueTestDelivery(db, CLI_ACTOR, w.id, opts.type === undefined ? undefined : { type: opts.type });
        const delivery = (await attemptDelivery(db, keyring, queued.id, { workerId: `cli-${process.pid}` })) ?? (await getDelivery(db, queued.id)) ?? queued;
        return { webhook: w, delivery };
      });
      if (opts.json) printJson(sent.delivery);
      else process.stdout.write(`test alert to ${sent.webhook.name} (${sent.webhook.url}): ${result(sent.delivery)}${sent.delivery.lastDurationMs === null ? "" : ` in ${sent.delivery.lastDurationMs} ms`}\n`);
      if (sent.delivery.status !== "delivered") process.exitCode = 1;
    });

  webhook
    .command("deliveries <webhook>")
    .description("a webhook's deliveries, newest first, with their last attempt's result")
    .option("--limit <n>", "how many (1 to 500, default 50)", wholeNumber("--limit", 1, 500), 50)
    .option("--json", "print a JSON array")
    .action(async (ref: string, opts: { limit: number; json?: boolean }) => {
      const rows = await withDatabase(async ({ db }) => {
        const { listDeliveries } = await import("../lib/alerts/webhooks");
        const w = await findWebhook(db, ref);
        return listDeliveries(db, w.id, opts.limit);
      });
      printList(
        rows,
        opts.json,
        "no deliveries yet; send a test with: portcullis webhook test " + ref + "",
        ["ID", "CREATED", "TYPE", "TEST", "ATTEMPTS", "NEXT ATTEMPT", "RESULT"],
        (d) => [d.id, d.createdAt, d.type, d.test ? "yes" : "", String(d.attempts), dash(d.nextAttemptAt), result(d)],
      );
    });

  webhook
    .command("delete <webhook>")
    .description("delete a webhook and its delivery history")
    .option("--yes", "do not ask; required when there is no terminal to ask on")
    .option("--json", "print JSON")
    .action(async (ref: string, opts: { yes?: boolean; json?: boolean }) => {
      const deleted = await withDatabase(async ({ db }) => {
        const { deleteWebhook } = await import("../lib/alerts/webhooks");
        const { CLI_ACTOR } = await import("../lib/audit");
        const w = await findWebhook(db, ref);
        if (!opts.yes) {
          const what = `delete webhook ${w.name} (${w.id}, ${w.url})?`;
          if (!process.stdin.isTTY) throw new UsageError(`add --yes to ${what.slice(0, -1)}`);
          if (!(await confirm(what[0]!.toUpperCase() + what.slice(1)))) throw new UsageError("not deleted");
        }
        return deleteWebhook(db, CLI_ACTOR, w.id);
      });
      if (opts.json) return printJson({ deleted: deleted.id, name: deleted.name });
      process.stdout.write(`deleted webhook ${deleted.name} (${deleted.id})\n`);
    });

  return webhook;
}
