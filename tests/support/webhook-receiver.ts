import http from "node:http";
import { findFreePort } from "../../lib/net";

// A local HTTP server that records every request it gets (headers and raw body), answering with
// the status codes it is told (one per request, then the default). For alert tests and the e2e spec.

export type ReceivedRequest = { method: string; path: string; headers: http.IncomingHttpHeaders; body: string; at: Date };

export type WebhookReceiver = {
  url: string;
  port: number;
  requests: ReceivedRequest[];
  /** The next requests get these status codes, in order; afterwards the default (200). */
  respondWith: (...codes: number[]) => void;
  setDefaultStatus: (code: number) => void;
  /** Resolves once at least n requests have arrived. */
  waitFor: (n: number, timeoutMs?: number) => Promise<ReceivedRequest[]>;
  /** Stops listening (connections are refused) until start() is called again on the same port. */
  stop: () => Promise<void>;
  start: () => Promise<void>;
};

export async function startWebhookReceiver(opts: { port?: number; path?: string } = {}): Promise<WebhookReceiver> {
  const port = opts.port ?? (await findFreePort());
  const requests: ReceivedRequest[] = [];
  const queue: number[] = [];
  let defaultStatus = 200;
  const waiters: { n: number; resolve: () => void }[] = [];
  let server: http.Server | undefined;

  const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      requests.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body: Buffer.concat(chunks).toString("utf8"), at: new Date() });
      const status = queue.length ? queue.shift()! : defaultStatus;
      res.writeHead(status, { "Content-Type": "text/plain" });
      res.end(status >= 200 && status < 300 ? "ok" : `receiver says ${status}`);
      for (const w of [...waiters]) {
        if (requests.length >= w.n) {
          waiters.splice(waiters.indexOf(w), 1);
          w.resolve();
        }
      }
    });
  };

  const start = () =>
    new Promise<void>((resolve, reject) => {
      server = http.createServer(handler);
      server.once("error", reject);
      server.listen(port, "127.0.0.1", () => resolve());
    });
  const stop = () =>
    new Promise<void>((resolve) => {
      if (!server) return resolve();
      server.closeAllConnections();
      server.close(() => resolve());
      server = undefined;
    });
  await start();

  return {
    url: `http://127.0.0.1:${port}${opts.path ?? "/hook"}`,
    port,
    requests,
    respondWith: (...codes) => queue.push(...codes),
    setDefaultStatus: (code) => (defaultStatus = code),
    waitFor: (n, timeoutMs = 10_000) =>
      new Promise((resolve, reject) => {
        if (requests.length >= n) return resolve(requests);
        const timer = setTimeout(() => reject(new Error(`the receiver got ${requests.length} of ${n} requests within ${timeoutMs} ms`)), timeoutMs);
        waiters.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve(requests);
          },
        });
      }),
    stop,
    start,
  };
}
