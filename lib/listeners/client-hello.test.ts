import net from "node:net";
import tls from "node:tls";
import { describe, expect, it } from "vitest";
import { parseClientHello } from "./client-hello";

/** Captures the bytes a real Node TLS client sends first. */
async function captureClientHello(options: tls.ConnectionOptions): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => {
      let data = Buffer.alloc(0);
      socket.on("data", (chunk) => {
        data = Buffer.concat([data, chunk]);
        if (parseClientHello(data).status !== "incomplete") {
          socket.destroy();
          server.close();
          resolve(data);
        }
      });
    });
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      const client = tls.connect({ host: "127.0.0.1", port, rejectUnauthorized: false, ...options });
      client.on("error", () => {});
    });
    server.on("error", reject);
  });
}

describe("parseClientHello", () => {
  it("reads SNI and ALPN from a real client's hello", async () => {
    const hello = await captureClientHello({ servername: "Shop.Example.test", ALPNProtocols: ["acme-tls/1"] });
    expect(parseClientHello(hello)).toEqual({ status: "ok", serverName: "shop.example.test", alpnProtocols: ["acme-tls/1"] });
  });

  it("reports no name when the client sends none, and waits for more bytes when cut short", async () => {
    const hello = await captureClientHello({ ALPNProtocols: ["h2", "http/1.1"] });
    expect(parseClientHello(hello)).toEqual({ status: "ok", serverName: undefined, alpnProtocols: ["h2", "http/1.1"] });
    for (const cut of [0, 3, 5, 40, hello.length - 1]) expect(parseClientHello(hello.subarray(0, cut)).status).toBe("incomplete");
  });

  it("reads a hello split over two TLS records", async () => {
    const hello = await captureClientHello({ servername: "split.example.test" });
    const body = hello.subarray(5);
    const half = Math.floor(body.length / 2);
    const record = (b: Buffer) => Buffer.concat([Buffer.from([0x16, 0x03, 0x01, b.length >> 8, b.length & 0xff]), b]);
    const split = Buffer.concat([record(body.subarray(0, half)), record(body.subarray(half))]);
    expect(parseClientHello(split)).toMatchObject({ status: "ok", serverName: "split.example.test" });
  });

  it("refuses what is not a TLS hello", () => {
    expect(parseClientHello(Buffer.from("GET / HTTP/1.1\r\n\r\n")).status).toBe("invalid");
    expect(parseClientHello(Buffer.from([0x16, 0x03, 0x01, 0x00, 0x05, 0x02, 0x00, 0x00, 0x01, 0x00])).status).toBe("invalid");
    const garbage = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x08, 0x01, 0x00, 0x00, 0x04, 0xff, 0xff, 0xff, 0xff]);
    expect(parseClientHello(garbage).status).toBe("invalid");
  });
});
