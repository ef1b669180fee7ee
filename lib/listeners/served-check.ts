import type net from "node:net";
import tls from "node:tls";
import type { Db } from "../db";
import type { ListenerChecksTable, ListenersTable } from "../db/schema";
import { recordEvent } from "../events";
import { nowIso } from "../ids";

// "Renewed but still serving the old one": connect to mappings with their SNI name, as a client would,
// and compare what is served with what the database says should be. Each run checks what is new or has
// changed since its last check (and what did not serve right then); the periodic run also re-checks a
// slice of the rest, longest-unchecked first, so that at 10,000 mappings the edge does not handshake with
// itself 10,000 times a minute.

export type ServedCertificate = { fingerprint: string; subject: string };

// One client context for every check: a fresh one per connection cost the edge's later handshakes
// about 12% at 10,000 mappings (bench/edge.ts).
let checkContext: tls.SecureContext | undefined;

/** "address:port" of this process's check connections in flight: the edge leaves them out of its traffic counters. */
const checkConnections = new Set<string>();

/** Whether a connection the edge accepted is one of this process's own served-certificate checks. */
export function isServedCheckConnection(socket: net.Socket): boolean {
  return servedChecksInFlight() && isServedCheckPeer(socket.remoteAddress, socket.remotePort);
}

/** Whether any check is connected now: when none is, no connection is one (and its peer need not be read). */
export const servedChecksInFlight = () => checkConnections.size > 0;

/** Whether a connection from this address and port is one of this process's own served-certificate checks. */
export function isServedCheckPeer(address = "", port: number | undefined): boolean {
  // A listener on "::" sees the check's 127.0.0.1 as ::ffff:127.0.0.1.
  return checkConnections.has(`${address.startsWith("::ffff:") ? address.slice(7) : address}:${port}`);
}

export function fetchServedCertificate(host: string, port: number, servername: string, timeoutMs = 5000): Promise<ServedCertificate> {
  return new Promise((resolve, reject) => {
    checkContext ??= tls.createSecureContext();
    const socket = tls.connect({ host, port, servername, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"], secureContext: checkContext });
    const timer = setTimeout(() => socket.destroy(new Error("no answer within 5 s")), timeoutMs);
    // Registered before the ClientHello can reach an edge in this process: its read runs after this callback.
    let own: string | undefined;
    socket.once("connect", () => checkConnections.add((own = `${socket.localAddress}:${socket.localPort}`)));
    socket.once("close", () => own && checkConnections.delete(own));
    socket.once("secureConnect", () => {
      clearTimeout(timer);
      const cert = socket.getPeerX509Certificate();
      socket.end();
      if (!cert) reject(new Error("no certificate was served"));
      else resolve({ fingerprint: cert.fingerprint256, subject: cert.subject.replace(/\n/g, ", ") });
    });
    socket.once("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

/** The address to dial for a listener bound to a wildcard address. */
export function dialAddress(bindAddress: string): string {
  if (bindAddress === "0.0.0.0" || bindAddress === "::") return "127.0.0.1";
  return bindAddress;
}

export type CheckPlan = {
  /** Listeners whose every mapping is checked: just opened, so nothing is known about what they serve. */
  everything?: ReadonlySet<string>;
  /** How many of a listener's other mappings to re-check too, longest-unchecked first, given how many it has. */
  rotation?: (mappings: number) => number;
};

/** The periodic run's slice: every mapping of a small listener, and at least a thirtieth of a large one. */
export const periodicRotation = (mappings: number) => Math.max(100, Math.ceil(mappings / 30));

const CONCURRENCY = 16;
const WRITE_BATCH = 200;

type Mapping = { hostname: string; fingerprint_sha256: string | null; name: string };
type Previous = Pick<ListenerChecksTable, "hostname" | "checked_at" | "status" | "expected_fingerprint" | "served_fingerprint">;

/** Which mappings this run checks: new, changed and failing ones, then the rotation's slice of the rest. */
function dueMappings(mappings: Mapping[], previous: Map<string, Previous>, everything: boolean, rotation: number): Mapping[] {
  if (everything) return mappings;
  const due: Mapping[] = [];
  const rest: Mapping[] = [];
  for (const m of mappings) {
    const before = previous.get(m.hostname);
    if (!before || before.status !== "serving" || before.expected_fingerprint !== m.fingerprint_sha256) due.push(m);
    else rest.push(m);
  }
  if (rotation > 0 && rest.length) {
    if (rotation < rest.length) rest.sort((a, b) => (previous.get(a.hostname)!.checked_at < previous.get(b.hostname)!.checked_at ? -1 : 1));
    due.push(...rest.slice(0, rotation));
  }
  return due;
}

export async function checkServedCertificates(db: Db, listeners: ListenersTable[], plan: CheckPlan = {}) {
  for (const listener of listeners) {
    const mappings = await db
      .selectFrom("certificate_mappings")
      .innerJoin("certificates", "certificates.id", "certificate_mappings.certificate_id")
      .select(["certificate_mappings.hostname", "certificates.fingerprint_sha256", "certificates.name"])
      .where("certificate_mappings.listener_id", "=", listener.id)
      .execute();
    const previous = new Map(
      (
        await db
          .selectFrom("listener_checks")
          .select(["hostname", "checked_at", "status", "expected_fingerprint", "served_fingerprint"])
          .where("listener_id", "=", listener.id)
          .execute()
      ).map((c) => [c.hostname, c]),
    );
    const queue = dueMappings(mappings, previous, plan.everything?.has(listener.id) ?? false, plan.rotation?.(mappings.length) ?? 0);
    let batch: ListenerChecksTable[] = [];
    // Results are written a batch at a time: one statement per row blocked the edge's event loop on SQLite.
    const flush = async () => {
      if (!batch.length) return;
      const rows = batch;
      batch = [];
      await db
        .insertInto("listener_checks")
        .values(rows)
        .onConflict((oc) =>
          oc.columns(["listener_id", "hostname"]).doUpdateSet((eb) => ({
            checked_at: eb.ref("excluded.checked_at"),
            status: eb.ref("excluded.status"),
            expected_fingerprint: eb.ref("excluded.expected_fingerprint"),
            served_fingerprint: eb.ref("excluded.served_fingerprint"),
            served_subject: eb.ref("excluded.served_subject"),
            detail: eb.ref("excluded.detail"),
          })),
        )
        .execute();
    };
    // Names whose check turned "serving" in this run (new, changed, or recovered): one event for the lot,
    // so that an open listener page shows the result, and the timeline says the failure is over.
    const nowServing: string[] = [];
    let next = 0;
    const workers = Array.from({ length: Math.min(CONCURRENCY, queue.length) }, async () => {
      while (next < queue.length) {
        const m = queue[next++];
        const servername = m.hostname.startsWith("*.") ? `portcullis-check.${m.hostname.slice(2)}` : m.hostname;
        let status: "serving" | "mismatch" | "error";
        let served: ServedCertificate | undefined;
        let detail: string | null = null;
        try {
          served = await fetchServedCertificate(dialAddress(listener.bind_address), listener.port, servername);
          status = served.fingerprint === m.fingerprint_sha256 ? "serving" : "mismatch";
          if (status === "mismatch") detail = `expected "${m.name}" (${m.fingerprint_sha256}), served ${served.subject} (${served.fingerprint})`;
        } catch (err) {
          status = "error";
          detail = `could not complete a handshake: ${(err as Error).message}`;
        }
        batch.push({
          listener_id: listener.id,
          hostname: m.hostname,
          checked_at: nowIso(),
          status,
          expected_fingerprint: m.fingerprint_sha256,
          served_fingerprint: served?.fingerprint ?? null,
          served_subject: served?.subject ?? null,
          detail,
        });
        if (batch.length >= WRITE_BATCH) await flush();
        const before = previous.get(m.hostname);
        const changed = before?.status !== status || before?.served_fingerprint !== (served?.fingerprint ?? null);
        if (status === "serving" && changed) nowServing.push(m.hostname);
        if (status !== "serving" && changed) {
          await recordEvent(db, {
            type: status === "mismatch" ? "tls.served_mismatch" : "tls.served_check_failed",
            severity: "warning",
            listenerId: listener.id,
            message: `listener "${listener.name}", ${m.hostname}: ${detail}`,
            detail: { hostname: m.hostname, expected: m.fingerprint_sha256, served: served?.fingerprint ?? null },
          });
        }
      }
    });
    await Promise.all(workers);
    await flush();
    if (nowServing.length) {
      const shown = nowServing.slice(0, 5).join(", ") + (nowServing.length > 5 ? ` and ${nowServing.length - 5} more` : "");
      await recordEvent(db, {
        type: "tls.served_check_passed",
        severity: "info",
        listenerId: listener.id,
        message: `listener "${listener.name}" serves the mapped certificate for ${shown}`,
        detail: { count: nowServing.length, hostnames: nowServing.slice(0, 100) },
      });
    }
    const mapped = new Set(mappings.map((m) => m.hostname));
    const stale = [...previous.keys()].filter((h) => !mapped.has(h));
    for (let i = 0; i < stale.length; i += 500) {
      await db.deleteFrom("listener_checks").where("listener_id", "=", listener.id).where("hostname", "in", stale.slice(i, i + 500)).execute();
    }
  }
}
