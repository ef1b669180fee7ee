import fs from "node:fs";
import path from "node:path";
import { expect, test } from "./fixtures";

// Walks every route under app/ and proves that each one refuses an anonymous caller: pages
// redirect to /login, API handlers answer 401 with a JSON error. A new route is covered by itself.

const APP = path.resolve(import.meta.dirname, "..", "app");
const PUBLIC_PAGES = new Set(["/login", "/setup"]);
// /api/v1/ca is public so that clients can pin the local CA (404 while there is none, as on this
// loopback console); /metrics answers Prometheus scrapers in plain text, not JSON.
const PUBLIC_API = new Set(["/api/v1/health", "/api/v1/ca"]);
const PLAIN_TEXT_API = new Set(["/metrics"]);
const METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"] as const;

type Route = { url: string; kind: "page" | "api"; methods: string[] };

function walk(dir: string, segments: string[], out: Route[]) {
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name.startsWith("_")) continue; // private folders hold no routes
      const segment = /^\(.*\)$/.test(entry.name) ? null : entry.name.replace(/^\[\.\.\.(.+)\]$/, "x/y").replace(/^\[(.+)\]$/, "crt_doesnotexist");
      walk(full, segment ? [...segments, segment] : segments, out);
    } else if (/^page\.tsx?$/.test(entry.name)) {
      out.push({ url: `/${segments.join("/")}`, kind: "page", methods: ["GET"] });
    } else if (/^route\.tsx?$/.test(entry.name)) {
      const source = fs.readFileSync(full, "utf8");
      const methods = METHODS.filter((m) => new RegExp(`export (const|async function|function) ${m}\\b|export const \\{[^}]*\\b${m}\\b`).test(source));
      out.push({ url: `/${segments.join("/")}`, kind: "api", methods: [...methods] });
    }
  }
  return out;
}

const routes = walk(APP, [], []).filter((r) => !r.url.startsWith("/api/auth/"));

test("the walk finds the routes it should", () => {
  const urls = routes.map((r) => r.url);
  for (const expected of ["/", "/certificates", "/certificates/new", "/certificates/crt_doesnotexist", "/settings/tokens", "/api/v1/certificates", "/api/v1/certificates/crt_doesnotexist/private-key"]) {
    expect(urls).toContain(expected);
  }
  expect(routes.find((r) => r.url === "/api/v1/certificates")?.methods).toEqual(["GET", "POST"]);
});

for (const route of routes) {
  for (const method of route.methods) {
    const isPublic = route.kind === "page" ? PUBLIC_PAGES.has(route.url) : PUBLIC_API.has(route.url);
    test(`${method} ${route.url} ${isPublic ? "is public" : "refuses an anonymous caller"}`, async ({ request }) => {
      const response = await request.fetch(route.url, {
        method,
        maxRedirects: 0,
        headers: method === "GET" ? {} : { "Content-Type": "application/json" },
        data: method === "GET" ? undefined : "{}",
      });
      if (isPublic) {
        expect([401, 403]).not.toContain(response.status());
        expect(response.status()).toBeLessThan(route.url === "/api/v1/ca" ? 500 : 400);
        return;
      }
      if (PLAIN_TEXT_API.has(route.url)) {
        expect(response.status()).toBe(401);
        expect(response.headers()["www-authenticate"]).toMatch(/^Bearer/);
        expect(await response.text()).toMatch(/token/i);
        return;
      }
      if (route.kind === "page") {
        expect(response.status()).toBe(307);
        expect(response.headers().location).toMatch(/\/login(\?|$)/);
      } else {
        expect(response.status()).toBe(401);
        expect((await response.json()).error.code).toBe("unauthenticated");
      }
    });
  }
}
