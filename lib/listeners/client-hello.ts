// Reads the server name (SNI) and offered ALPN protocols from a TLS ClientHello before the
// handshake starts, so that the edge can pick the certificate, including the TLS-ALPN-01
// challenge certificate, which depends on ALPN and which Node's SNICallback cannot see.

export type ClientHello = { serverName?: string; alpnProtocols: string[] };
export type ClientHelloResult = { status: "incomplete" } | { status: "invalid"; reason: string } | ({ status: "ok" } & ClientHello);

const MAX_HANDSHAKE_BYTES = 64 * 1024;

/** `data` is everything received so far on the connection. */
export function parseClientHello(data: Buffer): ClientHelloResult {
  // Collect the handshake message from as many TLS records as it spans.
  const chunks: Buffer[] = [];
  let offset = 0;
  let collected = 0;
  let needed = -1;
  while (needed < 0 || collected < needed) {
    if (data.length < offset + 5) return { status: "incomplete" };
    if (data[offset] !== 0x16) return { status: "invalid", reason: "not a TLS handshake" };
    const recordLength = data.readUInt16BE(offset + 3);
    if (recordLength === 0 || recordLength > 16_384 + 2048) return { status: "invalid", reason: "bad TLS record length" };
    if (data.length < offset + 5 + recordLength) return { status: "incomplete" };
    chunks.push(data.subarray(offset + 5, offset + 5 + recordLength));
    collected += recordLength;
    offset += 5 + recordLength;
    if (needed < 0) {
      const first = chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
      if (first.length < 4) continue;
      if (first[0] !== 0x01) return { status: "invalid", reason: "the first handshake message is not a ClientHello" };
      needed = 4 + first.readUIntBE(1, 3);
      if (needed > MAX_HANDSHAKE_BYTES) return { status: "invalid", reason: "ClientHello too large" };
    }
  }
  // Almost always one record holds the whole ClientHello: then no copy is made.
  const hello = (chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)).subarray(4, needed);
  try {
    return { status: "ok", ...readHello(hello) };
  } catch {
    return { status: "invalid", reason: "malformed ClientHello" };
  }
}

function readHello(b: Buffer): ClientHello {
  let p = 2 + 32; // client_version, random
  p += 1 + b[p]; // session id
  p += 2 + b.readUInt16BE(p); // cipher suites
  p += 1 + b[p]; // compression methods
  const result: ClientHello = { alpnProtocols: [] };
  if (p >= b.length) return result;
  const end = p + 2 + b.readUInt16BE(p);
  if (end > b.length) throw new Error("extensions overrun");
  p += 2;
  while (p + 4 <= end) {
    const type = b.readUInt16BE(p);
    const length = b.readUInt16BE(p + 2);
    const body = b.subarray(p + 4, p + 4 + length);
    if (body.length !== length) throw new Error("extension overrun");
    if (type === 0x0000) result.serverName = readServerName(body);
    if (type === 0x0010) result.alpnProtocols = readAlpn(body);
    p += 4 + length;
  }
  return result;
}

function readServerName(body: Buffer): string | undefined {
  let p = 2;
  while (p + 3 <= body.length) {
    const nameType = body[p];
    const length = body.readUInt16BE(p + 1);
    const name = body.subarray(p + 3, p + 3 + length);
    if (nameType === 0) return name.toString("ascii").toLowerCase().replace(/\.$/, "");
    p += 3 + length;
  }
  return undefined;
}

function readAlpn(body: Buffer): string[] {
  const protocols: string[] = [];
  let p = 2;
  while (p < body.length) {
    const length = body[p];
    protocols.push(body.subarray(p + 1, p + 1 + length).toString("ascii"));
    p += 1 + length;
  }
  return protocols;
}
