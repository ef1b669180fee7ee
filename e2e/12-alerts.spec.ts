import tls from "node:tls";
import { verifySignature } from "../lib/alerts/signature";
import { findFreePort } from "../lib/net";
import { startWebhookReceiver } from "../tests/support/webhook-receiver";
import { ADMIN, expect, LoginPage, test } from "./fixtures";

// Settings → Alerts: add a webhook pointing at a receiver started here, see its signing secret once,
// press Send test and see "delivered" with HTTP 200 in the deliveries table; the receiver got a
// request whose X-Portcullis-Signature verifies with that secret. A failing receiver shows its failure.
// Then the worker's own dispatcher: a listener serving its fallback certificate alerts once.

test.describe.configure({ mode: "serial" });

const NAME = "ops receiver";

test("a webhook: the secret once, Send test delivered (HTTP 200) and correctly signed; a failure is shown plainly", async ({ page }) => {
  const receiver = await startWebhookReceiver();
  try {
    await new LoginPage(page).signIn(ADMIN);
    await page.goto("/settings");
    await page.getByRole("link", { name: /Alerts/ }).click();
    await expect(page.getByRole("heading", { name: "Alerts", exact: true })).toBeVisible();

    const form = page.getByTestId("webhook-form");
    await form.getByLabel("Name", { exact: true }).fill(NAME);
    await form.getByLabel("URL", { exact: true }).fill("ftp://hooks.example.test/x");
    await form.getByRole("button", { name: "Add webhook" }).click();
    await expect(page.locator("#url-error")).toContainText("the URL must start with https:// or http://");
    await expect(page.getByTestId("webhook")).toHaveCount(0);

    await form.getByLabel("URL", { exact: true }).fill(receiver.url);
    await form.getByLabel(/tls\.served_mismatch/).uncheck();
    await form.getByRole("button", { name: "Add webhook" }).click();
    const secret = ((await page.getByTestId("webhook-secret").textContent()) ?? "").trim();
    expect(secret).toMatch(/^whsec_[A-Za-z0-9_-]{40,}$/);
    const card = page.locator(`[data-testid=webhook][data-name="${NAME}"]`);
    await expect(card).toBeVisible();
    await expect(card.getByTestId("webhook-url")).toHaveText(receiver.url);
    await expect(card).not.toContainText("tls.served_mismatch,");

    await card.getByLabel("Test event type").selectOption("tls.renewal_failed");
    await card.getByRole("button", { name: "Send test" }).click();
    await expect(card.getByTestId("form-message")).toContainText("Test delivered: HTTP 200");
    const first = card.getByTestId("delivery").first();
    await expect(first).toHaveAttribute("data-status", "delivered");
    await expect(first.getByTestId("delivery-http")).toHaveText("200");
    await expect(first).toContainText("tls.renewal_failed");

    expect(receiver.requests).toHaveLength(1);
    const [request] = receiver.requests;
    expect(request.method).toBe("POST");
    expect(request.headers["content-type"]).toBe("application/json");
    expect(request.headers["x-portcullis-event"]).toBe("tls.renewal_failed");
    expect(verifySignature(secret, request.body, request.headers["x-portcullis-signature"] as string)).toMatchObject({ ok: true });
    const body = JSON.parse(request.body) as { id: string; type: string; test?: boolean };
    expect(body).toMatchObject({ type: "tls.renewal_failed", test: true });
    expect(request.headers["x-portcullis-delivery"]).toBe(body.id);
    await expect(first).toHaveAttribute("data-id", body.id);

    // Shown once: not after a reload, not in the API.
    await page.reload();
    await expect(card).toBeVisible();
    await expect(page.getByTestId("webhook-secret")).toHaveCount(0);
    expect(await page.content()).not.toContain(secret);
    const listed = await (await page.request.get("/api/v1/webhooks")).text();
    expect(listed).toContain(NAME);
    expect(listed).not.toContain(secret);

    // The API refuses input that is not a URL with a 400 that says what is wrong, and saves nothing.
    const refused = await page.request.post("/api/v1/webhooks", { data: { name: "bad", url: "not a url" } });
    expect(refused.status()).toBe(400);
    expect((await refused.json()).error).toMatchObject({ code: "validation_failed", message: expect.stringContaining("not a URL") });

    // A receiver answering 500: the test is not delivered, and the table says why.
    receiver.respondWith(500);
    await card.getByRole("button", { name: "Send test" }).click();
    await expect(card.getByTestId("form-message")).toContainText("Test not delivered: the receiver answered HTTP 500");
    await expect(card.getByTestId("delivery")).toHaveCount(2);
    const failed = card.getByTestId("delivery").first();
    await expect(failed).toHaveAttribute("data-status", "failed");
    await expect(failed.getByTestId("delivery-http")).toHaveText("500");
    await expect(failed.getByTestId("delivery-error")).toContainText("the receiver answered HTTP 500");

    // Delete, after confirming.
    await card.getByRole("button", { name: "Delete" }).click();
    await card.getByRole("button", { name: "Yes, delete" }).click();
    await expect(page.getByTestId("webhook")).toHaveCount(0);
  } finally {
    await receiver.stop();
  }
});

test("the worker alerts once when a listener serves its fallback certificate, and the page shows the delivery", async ({ page }) => {
  const receiver = await startWebhookReceiver();
  let listenerId: string | undefined;
  try {
    await new LoginPage(page).signIn(ADMIN);
    const created = await page.request.post("/api/v1/webhooks", { data: { name: "fallback watcher", url: receiver.url, eventTypes: ["tls.fallback_served"] } });
    expect(created.status()).toBe(201);
    const { id: webhookId, secret } = (await created.json()) as { id: string; secret: string };
    const port = await findFreePort();
    const listener = await page.request.post("/api/v1/listeners", { data: { name: "alerts fallback", kind: "https", bindAddress: "127.0.0.1", port, upstreamUrl: "http://127.0.0.1:9" } });
    expect(listener.status()).toBe(201);
    listenerId = ((await listener.json()) as { id: string }).id;

    // Two handshakes for names nobody mapped: the edge serves its fallback and records it; one problem, one alert.
    const handshake = (servername: string) =>
      new Promise<void>((resolve, reject) => {
        const socket = tls.connect({ host: "127.0.0.1", port, servername, rejectUnauthorized: false }, () => {
          socket.end();
          resolve();
        });
        socket.once("error", reject);
      });
    await expect(async () => handshake("nobody-a.alerts.example.test")).toPass({ timeout: 15_000 });
    await handshake("nobody-b.alerts.example.test");
    const [request] = await receiver.waitFor(1, 20_000);
    expect(verifySignature(secret, request.body, request.headers["x-portcullis-signature"] as string)).toMatchObject({ ok: true });
    expect(JSON.parse(request.body)).toMatchObject({ type: "tls.fallback_served", problemKey: `fallback:${listenerId}`, listener: { id: listenerId, name: "alerts fallback" }, severity: "warning" });

    await page.goto("/settings/alerts");
    const card = page.locator('[data-testid=webhook][data-name="fallback watcher"]');
    await expect(card.getByTestId("delivery")).toHaveCount(1);
    await expect(card.getByTestId("delivery").first()).toHaveAttribute("data-status", "delivered");
    await expect(card.getByTestId("delivery").first()).toContainText(`fallback:${listenerId}`);
    await new Promise((r) => setTimeout(r, 1500));
    expect(receiver.requests).toHaveLength(1);
    expect((await page.request.delete(`/api/v1/webhooks/${webhookId}`)).status()).toBe(200);
  } finally {
    if (listenerId) await page.request.delete(`/api/v1/listeners/${listenerId}`);
    await receiver.stop();
  }
});
