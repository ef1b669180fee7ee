import dgram from "node:dgram";
import type { AddressInfo } from "node:net";

// A tiny authoritative DNS server over UDP for tests: A, NS and TXT records from memory. Enough for
// Node's resolver (c-ares) to look up a zone's name servers, their addresses and TXT records.

const TYPES = { A: 1, NS: 2, TXT: 16 } as const;
type RecordType = keyof typeof TYPES;

export type TinyDns = {
  address: string;
  port: number;
  /** "127.0.0.1:5353" for Resolver#setServers. */
  server: string;
  set(name: string, type: RecordType, values: string[]): void;
  addTxt(name: string, value: string): void;
  clearTxt(name: string): void;
  /** Queries answered, "TXT _acme-challenge.example.test". */
  queries: string[];
  stop(): Promise<void>;
};

export async function startTinyDns(opts: { address?: string; port?: number } = {}): Promise<TinyDns> {
  const records = new Map<string, string[]>();
  const key = (name: string, type: RecordType) => `${type} ${name.toLowerCase().replace(/\.$/, "")}`;
  const queries: string[] = [];
  const socket = dgram.createSocket("udp4");
  socket.on("message", (msg, rinfo) => {
    try {
      const reply = answer(msg, records, queries);
      if (reply) socket.send(reply, rinfo.port, rinfo.address);
    } catch {
      // A packet we do not understand gets no answer, like a real server under attack would.
    }
  });
  await new Promise<void>((resolve, reject) => {
    socket.once("error", reject);
    socket.bind(opts.port ?? 0, opts.address ?? "127.0.0.1", () => resolve());
  });
  const { address, port } = socket.address() as AddressInfo;
  return {
    address,
    port,
    server: `${address}:${port}`,
    set: (name, type, values) => void records.set(key(name, type), values),
    addTxt: (name, value) => void records.set(key(name, "TXT"), [...(records.get(key(name, "TXT")) ?? []), value]),
    clearTxt: (name) => void records.delete(key(name, "TXT")),
    queries,
    stop: () => new Promise<void>((resolve) => socket.close(() => resolve())),
  };
}

function readName(msg: Buffer, offset: number): { name: string; end: number } {
  const labels: string[] = [];
  let i = offset;
  while (msg[i] !== 0) {
    const len = msg[i];
    if (len >= 0xc0) throw new Error("compressed names in questions are not expected");
    labels.push(msg.subarray(i + 1, i + 1 + len).toString("ascii"));
    i += len + 1;
  }
  return { name: labels.join(".").toLowerCase(), end: i + 1 };
}

function encodeName(name: string): Buffer {
  const parts = name.replace(/\.$/, "").split(".").filter(Boolean);
  return Buffer.concat([...parts.map((p) => Buffer.concat([Buffer.from([p.length]), Buffer.from(p, "ascii")])), Buffer.from([0])]);
}

function rdata(type: RecordType, value: string): Buffer {
  if (type === "A") return Buffer.from(value.split(".").map(Number));
  if (type === "NS") return encodeName(value);
  const chunks: Buffer[] = [];
  const bytes = Buffer.from(value, "utf8");
  for (let i = 0; i === 0 || i < bytes.length; i += 255) {
    const part = bytes.subarray(i, i + 255);
    chunks.push(Buffer.from([part.length]), part);
  }
  return Buffer.concat(chunks);
}

function answer(msg: Buffer, records: Map<string, string[]>, queries: string[]): Buffer | undefined {
  if (msg.length < 12) return undefined;
  const id = msg.readUInt16BE(0);
  const flags = msg.readUInt16BE(2);
  const { name, end } = readName(msg, 12);
  const qtype = msg.readUInt16BE(end);
  const question = msg.subarray(12, end + 4);
  const type = (Object.keys(TYPES) as RecordType[]).find((t) => TYPES[t] === qtype);
  queries.push(`${type ?? qtype} ${name}`);
  const values = type ? (records.get(`${type} ${name}`) ?? []) : [];
  const nameExists = [...records.keys()].some((k) => k.endsWith(` ${name}`));
  const answers = values.map((value) => {
    const data = rdata(type!, value);
    const rr = Buffer.alloc(12);
    rr.writeUInt16BE(0xc00c, 0); // the name: a pointer to the question's
    rr.writeUInt16BE(qtype, 2);
    rr.writeUInt16BE(1, 4); // IN
    rr.writeUInt32BE(30, 6);
    rr.writeUInt16BE(data.length, 10);
    return Buffer.concat([rr, data]);
  });
  const header = Buffer.alloc(12);
  header.writeUInt16BE(id, 0);
  // QR, AA, the client's RD; NXDOMAIN for a name with no records at all.
  header.writeUInt16BE(0x8000 | 0x0400 | (flags & 0x0100) | (nameExists ? 0 : 3), 2);
  header.writeUInt16BE(1, 4);
  header.writeUInt16BE(answers.length, 6);
  return Buffer.concat([header, question, ...answers]);
}
