import net from "node:net";
import { Readable } from "node:stream";
import { afterEach, describe, expect, it } from "vitest";
import { parseUpstream } from "./proxy";
import { UpstreamPool, type UpstreamControl, type UpstreamPoolOptions, type UpstreamRequest } from "./upstream";

// The edge's upstream client against raw TCP servers that write exactly the bytes each case needs: what an
// upstream may do (close a kept-alive connection, answer early, stall, send garbage) without node:http's
// manners in the way. The proxy's behaviour through it is in edge.test.ts.

type Answer = {
  status?: number;
  message?: string;
  headers?: string[];
  informational: { status: number; headers: string[] }[];
  body: string;
  trailers?: string[];
  error?: Error & { code?: string };
};

type Server = {
  port: number;
  /** Every connection the server accepted, in order, with what it received. */
  connections: { socket: net.Socket; received: string; closed: boolean }[];
  close(): Promise<void>;
};

const servers: Server[] = [];
const pools: UpstreamPool[] = [];
afterEach(async () => {
  for (const pool of pools.splice(0)) pool.destroy();
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

/** A TCP server that calls onRequest with each request head (and whatever body came with it so far). */
async function rawServer(onRequest: (socket: net.Socket, head: string, connection: number, requestOnConnection: number) => void, host = "127.0.0.1"): Promise<Server> {
  const connections: Server["connections"] = [];
  const server = net.createServer((socket) => {
    const entry = { socket, received: "", closed: false };
    const index = connections.push(entry) - 1;
    let pending = "";
    let requests = 0;
    socket.on("data", (d) => {
      entry.received += d.toString("latin1");
      pending += d.toString("latin1");
      let end: number;
      while ((end = pending.indexOf("\r\n\r\n")) >= 0) {
        const head = pending.slice(0, end);
        pending = pending.slice(end + 4);
        onRequest(socket, head, index, requests++);
      }
    });
    socket.on("error", () => {});
    socket.on("close", () => (entry.closed = true));
  });
  await new Promise<void>((r) => server.listen(0, host, r));
  const s: Server = {
    port: (server.address() as net.AddressInfo).port,
    connections,
    close: () =>
      new Promise<void>((r) => {
        for (const c of connections) c.socket.destroy();
        server.close(() => r());
      }),
  };
  servers.push(s);
  return s;
}

function poolFor(port: number, options: UpstreamPoolOptions = {}) {
  const pool = new UpstreamPool({ origin: `http://127.0.0.1:${port}`, hostname: "127.0.0.1", port, secure: false, host: `127.0.0.1:${port}` }, options);
  pools.push(pool);
  return pool;
}

function ask(pool: UpstreamPool, request: Partial<UpstreamRequest> = {}, onData?: (chunk: Buffer, control: UpstreamControl) => boolean): Promise<Answer> {
  return new Promise((resolve) => {
    const answer: Answer = { informational: [], body: "" };
    let control: UpstreamControl;
    pool.request(
      { method: "GET", path: "/", headers: ["host", "upstream.test"], body: null, ...request },
      {
        onStart: (c) => (control = c),
        onInformational: (status, headers) => answer.informational.push({ status, headers }),
        onHead: (status, message, headers) => Object.assign(answer, { status, message, headers }),
        onData: (chunk) => {
          answer.body += chunk.toString("latin1");
          return onData ? onData(chunk, control) : true;
        },
        onEnd: (trailers) => resolve({ ...answer, trailers }),
        onError: (error) => resolve({ ...answer, error }),
      },
    );
  });
}

const ok = (socket: net.Socket, body = "ok", extra = "") => socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${extra}\r\n${body}`);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, ms = 3000) {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

describe("the edge's upstream client", () => {
  it("sends one request head with the Host it was given, reuses the connection, and closes it when idle", async () => {
    const server = await rawServer((socket) => ok(socket));
    const pool = poolFor(server.port, { idleMs: 200 });
    for (let i = 0; i < 3; i++) expect(await ask(pool, { path: `/n${i}` })).toMatchObject({ status: 200, message: "OK", body: "ok" });
    expect(server.connections).toHaveLength(1);
    expect(server.connections[0].received).toBe(["/n0", "/n1", "/n2"].map((p) => `GET ${p} HTTP/1.1\r\nhost: upstream.test\r\n\r\n`).join(""));
    // Without a Host header the upstream's own host goes.
    await ask(pool, { headers: [] });
    expect(server.connections[0].received).toContain(`GET / HTTP/1.1\r\nhost: 127.0.0.1:${server.port}\r\n\r\n`);
    await until("the idle connection to close", () => server.connections[0].closed);
    expect(pool.size).toBe(0);
  });

  it("connects to an IPv6 upstream by its address, and names it with brackets in Host", async () => {
    const server = await rawServer((socket) => ok(socket), "::1");
    const upstream = parseUpstream(`http://[::1]:${server.port}/base/`);
    expect(upstream).toMatchObject({ hostname: "::1", host: `[::1]:${server.port}`, basePath: "/base", port: server.port });
    const pool = new UpstreamPool(upstream);
    pools.push(pool);
    expect((await ask(pool, { headers: [] })).status).toBe(200);
    expect(server.connections[0].received).toBe(`GET / HTTP/1.1\r\nhost: [::1]:${server.port}\r\n\r\n`);
  });

  it("sends a request again on a new connection when a reused one closes before answering, if it is safe to repeat", async () => {
    // Each connection answers its first request, and closes on the second as an upstream whose keep-alive
    // ran out would.
    const server = await rawServer((socket, _head, _connection, n) => (n === 0 ? ok(socket) : socket.destroy()));
    const pool = poolFor(server.port);
    expect((await ask(pool)).status).toBe(200);
    expect(await ask(pool, { path: "/again" })).toMatchObject({ status: 200, body: "ok" });
    expect(server.connections).toHaveLength(2);
    expect(server.connections[1].received).toContain("GET /again HTTP/1.1");
    // A POST may have been acted on: it is not repeated, and the failure is the proxy's to report.
    const post = await ask(pool, { method: "POST", headers: ["content-length", "0"] });
    expect(post.status).toBeUndefined();
    expect(post.error?.code).toBe("ECONNRESET");
    expect(server.connections).toHaveLength(2);
    // An upstream that closes a kept-alive connection while it is idle: the pool lets go of it, and the next
    // request opens another.
    const closing = await rawServer((socket) => {
      ok(socket);
      setTimeout(() => socket.end(), 20);
    });
    const closingPool = poolFor(closing.port);
    expect((await ask(closingPool)).status).toBe(200);
    await until("the pool to let go of the closed connection", () => closingPool.size === 0);
    expect((await ask(closingPool)).status).toBe(200);
    expect(closing.connections).toHaveLength(2);
    // A fresh connection that fails is not the keep-alive race: no second try.
    const refusing = await rawServer((socket) => socket.destroy());
    const fresh = poolFor(refusing.port);
    expect((await ask(fresh)).error?.code).toBe("ECONNRESET");
    expect(refusing.connections).toHaveLength(1);
  });

  it("fails what is under way when the edge stops, and opens no new connection for it", async () => {
    const server = await rawServer((socket, _head, _connection, n) => {
      if (n === 0) ok(socket);
    });
    const pool = poolFor(server.port);
    expect((await ask(pool)).status).toBe(200);
    // A GET on the reused connection: the kind of request sent again when such a connection breaks.
    const waiting = ask(pool, { path: "/stopping" });
    await until("the request to reach the upstream", () => server.connections[0].received.includes("/stopping"));
    pool.destroy();
    const answer = await waiting;
    expect(answer.error?.message).toBe("the edge is stopping");
    await sleep(100);
    expect(server.connections).toHaveLength(1);
    expect(pool.size).toBe(0);
  });

  it("reports an upstream that refuses the connection, stalls, answers with something that is not HTTP/1.1, or switches protocols unasked", async () => {
    const closed = await rawServer(() => {});
    const port = closed.port;
    await closed.close();
    servers.splice(servers.indexOf(closed), 1);
    expect((await ask(poolFor(port))).error?.code).toBe("ECONNREFUSED");

    const silent = await rawServer(() => {});
    const t0 = Date.now();
    const stalled = await ask(poolFor(silent.port, { answerMs: 300 }));
    expect(stalled.error?.code).toBe("ETIMEDOUT");
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    await until("the stalled connection to close", () => silent.connections[0].closed);

    // A response that stops half-way is also cut off, and what came of it is not passed as a whole.
    const halfway = await rawServer((socket) => socket.write("HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf"));
    const cut = await ask(poolFor(halfway.port, { answerMs: 300 }));
    expect(cut).toMatchObject({ status: 200, body: "half" });
    expect(cut.error?.code).toBe("ETIMEDOUT");

    const garbage = await rawServer((socket) => socket.write("SSH-2.0-OpenSSH_9.2\r\n\r\n"));
    const pool = poolFor(garbage.port);
    const answer = await ask(pool);
    expect(answer.error?.code).toBe("EBADHTTP");
    expect(answer.error?.message).toMatch(/not valid HTTP\/1\.1 \(HPE_/);
    expect(pool.size).toBe(0);

    const switching = await rawServer((socket) => socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: other\r\nConnection: Upgrade\r\n\r\nnot http"));
    const switched = await ask(poolFor(switching.port));
    expect(switched.error).toMatchObject({ code: "EBADHTTP", message: "it switched protocols when no upgrade was asked for" });
    await until("the switched connection to close", () => switching.connections[0].closed);
  });

  it("reads a body delimited by the connection's end, none for HEAD or 304, 1xx answers first, many headers and trailers", async () => {
    const many = Array.from({ length: 40 }, (_, i) => `X-H${i}: v${i}\r\n`).join("");
    const server = await rawServer((socket, head) => {
      const path = head.split(" ")[1];
      if (path === "/until-close") socket.end("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
      else if (path === "/head") socket.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
      else if (path === "/304") socket.write("HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n");
      else if (path === "/hints") socket.write("HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal");
      else if (path === "/many") socket.write(`HTTP/1.1 200 OK\r\n${many}Content-Length: 2\r\n\r\nok`);
      else if (path === "/trailers") socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n4\r\nbody\r\n0\r\nX-Sum: 42\r\n\r\n");
    });
    const pool = poolFor(server.port);
    expect(await ask(pool, { path: "/until-close" })).toMatchObject({ status: 200, body: "until the end", headers: ["Connection", "close"] });
    expect(await ask(pool, { method: "HEAD", path: "/head" })).toMatchObject({ status: 200, body: "", headers: ["Content-Length", "1000"] });
    expect(await ask(pool, { path: "/304" })).toMatchObject({ status: 304, body: "" });
    expect(await ask(pool, { path: "/hints" })).toMatchObject({ informational: [{ status: 103, headers: ["Link", "</a.css>; rel=preload"] }], status: 200, body: "final" });
    const manyAnswer = await ask(pool, { path: "/many" });
    expect(manyAnswer.headers).toHaveLength(82);
    expect(manyAnswer.headers!.slice(78)).toEqual(["X-H39", "v39", "Content-Length", "2"]);
    expect(await ask(pool, { path: "/trailers" })).toMatchObject({ status: 200, body: "body", trailers: ["X-Sum", "42"] });
    // The first connection ended with its response; HEAD, 304, the hints, the 40 headers and the trailers shared the second.
    expect(server.connections).toHaveLength(2);
  });

  it("sends a body with its Content-Length as it is, and one without chunked", async () => {
    const server = await rawServer((socket) => setTimeout(() => ok(socket), 50));
    const pool = poolFor(server.port);
    expect((await ask(pool, { method: "PUT", headers: ["content-length", "11"], body: Readable.from([Buffer.from("hello"), Buffer.from(" world")]) })).status).toBe(200);
    expect((await ask(pool, { method: "POST", headers: [], body: Readable.from([Buffer.from("hello"), Buffer.from(" world!")]) })).status).toBe(200);
    expect(server.connections).toHaveLength(1);
    const received = server.connections[0].received;
    expect(received).toContain("PUT / HTTP/1.1\r\ncontent-length: 11\r\nhost: 127.0.0.1");
    expect(received).toContain("\r\n\r\nhello world");
    expect(received).toContain("POST / HTTP/1.1\r\nhost: 127.0.0.1");
    expect(received).toContain("transfer-encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n world!\r\n0\r\n\r\n");
  });

  it("does not reuse a connection whose answer came before all of the body, or whose client went away", async () => {
    const server = await rawServer((socket, head) => {
      if (head.startsWith("POST")) ok(socket, "too large");
      else if (head.includes("/slow")) socket.write("HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nfirst part");
      else ok(socket);
    });
    const pool = poolFor(server.port);
    // The upstream answers before the body is sent; the rest of the body would arrive as the next request.
    const body = new Readable({ read() {} });
    body.push("part of it");
    const early = await ask(pool, { method: "POST", headers: ["content-length", "1000"], body });
    expect(early).toMatchObject({ status: 200, body: "too large" });
    await until("the first connection to close", () => server.connections[0].closed);
    expect((await ask(pool)).status).toBe(200);
    expect(server.connections).toHaveLength(2);

    // The client leaves in the middle of a response: the rest of it would be read as the next answer.
    const gone = ask(pool, { path: "/slow" }, (_chunk, control) => {
      control.abort();
      return true;
    });
    await until("the connection of the abandoned response to close", () => server.connections[1].closed);
    expect((await ask(pool)).status).toBe(200);
    expect(server.connections).toHaveLength(3);
    void gone;
  });

  it("holds requests beyond its connection limit until one is free, and waits for a client that reads slowly", async () => {
    let open = 0;
    let most = 0;
    const server = await rawServer((socket) => {
      most = Math.max(most, ++open);
      setTimeout(() => {
        open--;
        ok(socket, "x".repeat(100_000));
      }, 30);
    });
    const pool = poolFor(server.port, { maxConnections: 2 });
    const answers = await Promise.all(Array.from({ length: 6 }, () => ask(pool)));
    expect(answers.map((a) => [a.status, a.body.length])).toEqual(Array(6).fill([200, 100_000]));
    expect(server.connections).toHaveLength(2);
    expect(most).toBe(2);

    // A client that asks the upstream to wait gets the rest when it resumes, past the time limit.
    let paused = false;
    const slow = await ask(poolFor(server.port, { answerMs: 200 }), {}, (_chunk, control) => {
      if (paused) return true;
      paused = true;
      setTimeout(() => control.resume(), 500);
      return false;
    });
    expect(slow).toMatchObject({ status: 200 });
    expect(slow.body).toHaveLength(100_000);

    // The wait asked for on a response's last bytes: the connection goes back to the pool reading, and serves the next.
    const small = await rawServer((socket) => ok(socket));
    const smallPool = poolFor(small.port);
    expect(await ask(smallPool, {}, () => false)).toMatchObject({ status: 200, body: "ok" });
    expect(await ask(smallPool)).toMatchObject({ status: 200, body: "ok" });
    expect(small.connections).toHaveLength(1);
  });
});
