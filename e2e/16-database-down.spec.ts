import crypto from "node:crypto";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import pg from "pg";
import { expect, test } from "@playwright/test";
import { findFreePort } from "../lib/net";
import { healthStatus, spawnConsole, stopConsole, type Spawned } from "./console-process";
import { LoginPage } from "./fixtures";

// A console on PostgreSQL whose database goes away while an operator has it open, and comes back.
// The console reaches PostgreSQL through a TCP forwarder in this process, so the test can cut the
// connection (as a stopped server or a broken network would) and restore it, without touching the
// machine's PostgreSQL. Every page must then say that the database cannot be reached and what to do,
// not show Next's "Application error", and a sign-in must not claim the password is wrong.

const ADMIN = { email: "down-admin@example.test", password: "down admin password 1" };
const serverUrl = process.env.PORTCULLIS_TEST_POSTGRES_URL;

test.describe.configure({ mode: "serial" });
test.skip(!serverUrl, "needs PostgreSQL (PORTCULLIS_TEST_POSTGRES_URL, which npm test sets)");

/** A TCP forwarder to PostgreSQL that can be cut (listening socket and open connections) and restored on its port. */
class Forwarder {
  private server?: net.Server;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  constructor(private readonly target: { host: string; port: number }) {}

  async open() {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.target);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on("close", () => this.sockets.delete(s));
        s.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.port, "127.0.0.1", () => resolve());
    });
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async cut() {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  }
}

let workDir: string;
let databaseName: string;
let forwarder: Forwarder;
let portcullis: Spawned | undefined;
let baseUrl: string;

/** The console's health status; 10 s for an answer, since it waits on the database connection. */
const health = () => healthStatus(baseUrl, 10_000);

async function adminClient<T>(fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

test.beforeAll(async () => {
  test.setTimeout(180_000);
  workDir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-e2e-down-"));
  databaseName = `portcullis_e2e_down_${crypto.randomBytes(4).toString("hex")}`;
  await adminClient((c) => c.query(`create database ${databaseName}`));
  const server = new URL(serverUrl!);
  forwarder = new Forwarder({ host: server.hostname, port: Number(server.port || 5432) });
  await forwarder.open();
  const databaseUrl = new URL(serverUrl!);
  databaseUrl.host = `127.0.0.1:${forwarder.port}`;
  databaseUrl.pathname = `/${databaseName}`;
  const port = await findFreePort();
  baseUrl = `http://127.0.0.1:${port}`;
  const env = {
    DATABASE_URL: databaseUrl.toString(),
    PORTCULLIS_DATA_DIR: path.join(workDir, "data"),
    PORTCULLIS_HOST: "127.0.0.1",
    PORTCULLIS_PORT: String(port),
    PORTCULLIS_ADMIN_EMAIL: ADMIN.email,
    PORTCULLIS_ADMIN_PASSWORD: ADMIN.password,
  };
  portcullis = await spawnConsole("console", baseUrl, env, workDir, "console");
});

test.afterAll(async () => {
  await stopConsole(portcullis);
  await forwarder?.cut();
  if (databaseName) await adminClient((c) => c.query(`drop database if exists ${databaseName} with (force)`)).catch(() => {});
  if (workDir && !process.env.PORTCULLIS_E2E_KEEP) fs.rmSync(workDir, { recursive: true, force: true });
});

test("with its database gone, every page says so and what to do, and works again once it is back", async ({ browser }) => {
  test.setTimeout(120_000);
  const operator = await browser.newContext({ baseURL: baseUrl });
  const page = await operator.newPage();
  await new LoginPage(page).signIn(ADMIN);
  await page.goto("/certificates");
  await expect(page.getByRole("heading", { name: "Certificates", level: 1 })).toBeVisible();

  await forwarder.cut();
  expect(await health()).toBe(503);

  // A page read from the server (the layout is what reads first): the message in place of the page.
  await page.goto("/settings");
  const unavailable = page.getByTestId("storage-unavailable");
  await expect(unavailable).toContainText("The console cannot read its database");
  await expect(unavailable).toContainText("The database cannot be reached: check that PostgreSQL is running and that DATABASE_URL points at it");
  await expect(page.getByText("Application error")).toHaveCount(0);

  // Someone signing in meanwhile: the page and the attempt say the database is the problem, not the password.
  const visitor = await browser.newContext({ baseURL: baseUrl });
  const login = await visitor.newPage();
  await login.goto("/login");
  await expect(login.getByTestId("storage-unavailable")).toContainText("You cannot sign in right now. The database cannot be reached");
  await login.getByLabel("Email").fill(ADMIN.email);
  await login.getByLabel("Password").fill(ADMIN.password);
  await login.getByRole("button", { name: "Sign in" }).click();
  await expect(login.getByText("You cannot sign in right now: the database cannot be reached")).toBeVisible();
  await expect(login.getByText("do not match an account")).toHaveCount(0);

  // Back: "Try again" loads the page.
  await forwarder.open();
  await expect.poll(health, { timeout: 15_000 }).toBe(200);
  await page.getByRole("button", { name: "Try again" }).click();
  await expect(page.getByRole("heading", { name: "Settings", level: 1 })).toBeVisible();
  await expect(unavailable).toHaveCount(0);
  await visitor.close();

  // A page whose own reads fail after the layout's did not (a link followed within the console: only the
  // page is fetched): the page's error boundary, which asks the health check for the cause.
  await page.goto("/certificates");
  await expect(page.getByRole("heading", { name: "Certificates", level: 1 })).toBeVisible();
  await forwarder.cut();
  await page.getByRole("navigation").getByRole("link", { name: "Listeners" }).click();
  const pageError = page.getByTestId("page-error");
  await expect(pageError).toContainText("This page could not be loaded");
  await expect(pageError).toContainText("The console cannot read its database");
  await expect(pageError).toContainText(/reference \S+/);
  await forwarder.open();
  await expect.poll(health, { timeout: 15_000 }).toBe(200);
  await pageError.getByRole("button", { name: "Try again" }).click();
  await expect(page.getByRole("heading", { name: "Listeners", level: 1 })).toBeVisible();
  await operator.close();
});
