"use client";

import { useRouter } from "next/navigation";
import { useEffect, useState } from "react";
import { postJson, sendJson } from "@/components/forms/api";
import { useApiSubmit } from "@/components/forms/use-api-submit";
import { AlertDeliveries } from "@/components/settings/alert-deliveries";
import { AlertEventTypesField, eventTypesFrom } from "@/components/settings/alert-event-types";
import { Button } from "@/components/ui/button";
import { ConfirmDeleteForm } from "@/components/ui/confirm-delete";
import { FormMessage, SelectField, TextField } from "@/components/ui/field";
import { ALERT_EVENT_TYPES } from "@/lib/alerts/constants";
import type { DeliveryView, WebhookView, WebhookWithSecret } from "@/lib/alerts/webhooks";

type Shown = { webhookName: string; secret: string; why: "created" | "rotated" };

const POLL_MS = 3_000;

/**
 * Settings → Alerts: webhooks that receive signed JSON alerts (one per problem, not one per retry),
 * their recent deliveries with each attempt's result, and a Send test button. The signing secret is
 * shown once, when it is made.
 */
export function AlertSettings({ webhooks, deliveries, isAdmin }: { webhooks: WebhookView[]; deliveries: Record<string, DeliveryView[]>; isAdmin: boolean }) {
  const router = useRouter();
  const { pending, errors, message, setMessage, submit } = useApiSubmit();
  const [formKey, setFormKey] = useState(0);
  const [shown, setShown] = useState<Shown | null>(null);
  const waiting = Object.values(deliveries).some((list) => list.some((d) => d.status === "pending"));

  // Retries happen in the worker: while any delivery is pending, look again every few seconds.
  useEffect(() => {
    if (!waiting) return;
    const timer = setInterval(() => router.refresh(), POLL_MS);
    return () => clearInterval(timer);
  }, [waiting, router]);

  function add(form: FormData) {
    return submit(
      () =>
        postJson<WebhookWithSecret>("/api/v1/webhooks", {
          name: form.get("name"),
          url: form.get("url"),
          eventTypes: eventTypesFrom(form),
          enabled: form.get("enabled") === "on",
        }),
      (created) => {
        setFormKey((k) => k + 1);
        setShown({ webhookName: created.name, secret: created.secret, why: "created" });
        setMessage({ text: `Webhook "${created.name}" added.`, tone: "success" });
        router.refresh();
      },
    );
  }

  return (
    <div className="space-y-6">
      <div>
        <h1 className="text-2xl font-bold">Alerts</h1>
        <p className="mt-1 text-sm text-slate-600">
          Webhooks get a signed JSON POST when a renewal fails, a certificate nears expiry (30, 14, 7 and 1 days before) or expires, a listener serves its fallback certificate, or a listener
          serves another certificate than the one mapped. One alert per problem: a certificate that keeps failing alerts once, and again only after it has recovered. Failed deliveries are retried
          after 30 s, 2 min, 10 min, 1 h and 6 h. Receivers check the <code className="font-mono text-xs">X-Portcullis-Signature</code> header (
          <code className="font-mono text-xs">t=&lt;unix seconds&gt;,v1=&lt;HMAC-SHA256 of &quot;t.body&quot;&gt;</code>) with the webhook&apos;s secret.
        </p>
      </div>

      {shown ? <SecretOnce shown={shown} onDone={() => setShown(null)} /> : null}

      {webhooks.length === 0 ? (
        <p className="rounded-lg bg-white px-4 py-6 text-sm text-slate-600 ring-1 ring-slate-200">No webhook yet.{isAdmin ? " Add one below." : ""}</p>
      ) : (
        <ul className="space-y-4" aria-label="Webhooks">
          {webhooks.map((w) => (
            <WebhookCard key={w.id} webhook={w} deliveries={deliveries[w.id] ?? []} isAdmin={isAdmin} onSecret={(secret) => setShown({ webhookName: w.name, secret, why: "rotated" })} />
          ))}
        </ul>
      )}

      {isAdmin ? (
        <form key={formKey} onSubmit={(e) => { e.preventDefault(); void add(new FormData(e.currentTarget)); }} className="max-w-2xl space-y-5 rounded-lg bg-white p-6 shadow-sm ring-1 ring-slate-200" noValidate data-testid="webhook-form">
          <h2 className="text-lg font-semibold">Add a webhook</h2>
          <TextField name="name" label="Name" placeholder="ops alerts" maxLength={100} errors={errors.name} autoComplete="off" />
          <TextField name="url" label="URL" placeholder="https://hooks.example.com/portcullis" errors={errors.url} autoComplete="off" spellCheck={false} hint="https:// or http://; addresses on your own network are fine. No user name or password in the URL: the receiver checks the signature." />
          <AlertEventTypesField idPrefix="new" selected={ALERT_EVENT_TYPES} errors={errors.eventTypes} />
          <label className="flex items-center gap-2 text-sm">
            <input type="checkbox" name="enabled" defaultChecked className="h-4 w-4 rounded border-slate-300" />
            Enabled
          </label>
          <FormMessage message={message?.text} tone={message?.tone} />
          <Button type="submit" disabled={pending}>
            {pending ? "Adding…" : "Add webhook"}
          </Button>
        </form>
      ) : (
        <FormMessage message={message?.text} tone={message?.tone} />
      )}
    </div>
  );
}

function SecretOnce({ shown, onDone }: { shown: Shown; onDone: () => void }) {
  const [copied, setCopied] = useState(false);
  return (
    <section className="space-y-2 rounded-lg bg-amber-50 p-4 ring-1 ring-amber-300" aria-labelledby="secret-heading" data-testid="webhook-secret-panel">
      <h2 id="secret-heading" className="font-semibold text-amber-900">
        Signing secret for &quot;{shown.webhookName}&quot;{shown.why === "rotated" ? " (new)" : ""}: copy it now
      </h2>
      <p className="text-sm text-amber-900">It is shown only this once. Portcullis keeps it sealed and will not show it again; rotate it if it is lost.</p>
      <div className="flex flex-wrap items-center gap-2">
        <code className="break-all rounded-md bg-slate-900 px-3 py-2 font-mono text-sm text-emerald-300" data-testid="webhook-secret">
          {shown.secret}
        </code>
        <Button
          variant="secondary"
          onClick={() => {
            void navigator.clipboard
              ?.writeText(shown.secret)
              .then(() => setCopied(true))
              .catch(() => setCopied(false));
          }}
        >
          {copied ? "Copied" : "Copy"}
        </Button>
        <Button variant="secondary" onClick={onDone}>
          I have saved it
        </Button>
      </div>
    </section>
  );
}

function WebhookCard({ webhook: w, deliveries, isAdmin, onSecret }: { webhook: WebhookView; deliveries: DeliveryView[]; isAdmin: boolean; onSecret: (secret: string) => void }) {
  const router = useRouter();
  const { busy, errors, message, setMessage, submit } = useApiSubmit();
  const [confirming, setConfirming] = useState(false);
  const [editing, setEditing] = useState(false);
  const [testType, setTestType] = useState<string>(w.eventTypes[0] ?? ALERT_EVENT_TYPES[0]);

  /** Every button here refreshes the page after it worked. */
  const act = <T,>(action: string, method: "PATCH" | "POST" | "DELETE", url: string, body: unknown, onOk: (data: T) => void) =>
    submit(
      () => sendJson<T>(method, url, body),
      (data) => {
        onOk(data);
        router.refresh();
      },
      { action },
    );

  const sendTest = () =>
    act<DeliveryView>("test", "POST", `/api/v1/webhooks/${w.id}/test`, { type: testType }, (d) => {
      if (d.status === "delivered") setMessage({ text: `Test delivered: HTTP ${d.lastStatusCode} in ${d.lastDurationMs} ms.`, tone: "success" });
      else setMessage({ text: `Test not delivered: ${d.lastError ?? d.status}.`, tone: "error" });
    });

  const save = (form: FormData) =>
    act("save", "PATCH", `/api/v1/webhooks/${w.id}`, { name: form.get(`name-${w.id}`), url: form.get(`url-${w.id}`), eventTypes: eventTypesFrom(form), enabled: form.get("enabled") === "on" }, () => {
      setEditing(false);
      setMessage({ text: "Saved.", tone: "success" });
    });

  return (
    <li className="rounded-lg bg-white ring-1 ring-slate-200" data-testid="webhook" data-name={w.name}>
      <div className="flex flex-wrap items-center justify-between gap-2 border-b border-slate-200 px-4 py-3">
        <div>
          <h2 className="text-lg font-semibold">
            {w.name}{" "}
            <span className={`ml-1 rounded-md px-2 py-0.5 text-xs font-medium ${w.enabled ? "bg-emerald-50 text-emerald-700" : "bg-slate-100 text-slate-600"}`} data-testid="webhook-enabled">
              {w.enabled ? "Enabled" : "Disabled"}
            </span>
          </h2>
          <p className="break-all font-mono text-xs text-slate-600" data-testid="webhook-url">
            {w.url}
          </p>
          <p className="text-xs text-slate-500">{w.eventTypes.join(", ")}</p>
        </div>
        {isAdmin ? (
          <div className="flex flex-wrap items-end gap-2">
            <div className="w-56">
              <SelectField name={`test-type-${w.id}`} label="Test event type" value={testType} onChange={(e) => setTestType(e.target.value)} options={ALERT_EVENT_TYPES.map((t) => ({ value: t, label: t }))} />
            </div>
            <Button disabled={busy !== null} onClick={() => void sendTest()}>
              {busy === "test" ? "Sending…" : "Send test"}
            </Button>
            <Button variant="secondary" disabled={busy !== null} onClick={() => setEditing((e) => !e)}>
              Edit
            </Button>
            <Button variant="secondary" disabled={busy !== null} onClick={() => void act<{ secret?: string } | null>("rotate", "POST", `/api/v1/webhooks/${w.id}/rotate-secret`, undefined, (data) => onSecret(String(data?.secret ?? "")))}>
              {busy === "rotate" ? "Rotating…" : "Rotate secret"}
            </Button>
            <Button variant="secondary" disabled={busy !== null} onClick={() => setConfirming(true)}>
              Delete
            </Button>
          </div>
        ) : null}
      </div>
      <div className="space-y-3 px-4 py-3 text-sm">
        {confirming ? (
          <ConfirmDeleteForm
            action={() => void act("delete", "DELETE", `/api/v1/webhooks/${w.id}`, undefined, () => setConfirming(false))}
            id={w.id}
            question={<>Delete the webhook &quot;{w.name}&quot; and its delivery history? It receives no more alerts.</>}
            pending={busy === "delete"}
            onCancel={() => setConfirming(false)}
          />
        ) : null}
        {editing ? (
          <form onSubmit={(e) => { e.preventDefault(); void save(new FormData(e.currentTarget)); }} className="space-y-3 rounded-md bg-slate-50 p-3" noValidate data-testid="webhook-edit-form">
            <TextField name={`name-${w.id}`} label="Name" defaultValue={w.name} maxLength={100} errors={errors.name} autoComplete="off" />
            <TextField name={`url-${w.id}`} label="URL" defaultValue={w.url} errors={errors.url} autoComplete="off" spellCheck={false} />
            <AlertEventTypesField idPrefix={w.id} selected={w.eventTypes} errors={errors.eventTypes} />
            <label className="flex items-center gap-2 text-sm">
              <input type="checkbox" name="enabled" defaultChecked={w.enabled} className="h-4 w-4 rounded border-slate-300" />
              Enabled
            </label>
            <div className="flex gap-2">
              <Button type="submit" disabled={busy !== null}>
                {busy === "save" ? "Saving…" : "Save"}
              </Button>
              <Button type="button" variant="secondary" onClick={() => setEditing(false)}>
                Cancel
              </Button>
            </div>
          </form>
        ) : null}
        <FormMessage message={message?.text} tone={message?.tone} />
        <h3 className="font-medium">Recent deliveries</h3>
        <AlertDeliveries deliveries={deliveries} />
      </div>
    </li>
  );
}
