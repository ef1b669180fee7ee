import tls from "node:tls";
import type { Db } from "../db";
import type { ListenersTable } from "../db/schema";
import { recordEvent } from "../events";
import { nowIso } from "../ids";

// "Renewed but still serving the old one": connect to every mapping with its SNI name, as a
// client would, and compare what is served with what the database says should be.

export type ServedCertificate = { fingerprint: string; subject: string };

// One client context for every check: a fresh one per connection cost the edge's later handshakes
// about 12% at 10,000 mappings (bench/edge.ts).
let checkContext: tls.SecureContext | undefined;

export function fetchServedCertificate(host: string, port: number, servername: string, timeoutMs = 5000): Promise<ServedCertificate> {
  return new Promise((resolve, reject) => {
    checkContext ??= tls.createSecureContext();
    const socket = tls.connect({ host, port, servername, rejectUnauthorized: false, ALPNProtocols: ["http/1.1"], secureContext: checkContext });
    const timer = setTimeout(() => socket.destroy(new Error("no answer within 5 s")), timeoutMs);
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

export async function checkServedCertificates(db: Db, listeners: ListenersTable[]) {
  for (const listener of listeners) {
    const mappings = await db
      .selectFrom("certificate_mappings")
      .innerJoin("certificates", "certificates.id", "certificate_mappings.certificate_id")
      .select(["certificate_mappings.hostname", "certificates.fingerprint_sha256", "certificates.name"])
      .where("certificate_mappings.listener_id", "=", listener.id)
      .execute();
    const previous = new Map(
      (await db.selectFrom("listener_checks").selectAll().where("listener_id", "=", listener.id).execute()).map((c) => [c.hostname, c]),
    );
    const queue = [...mappings];
    const workers = Array.from({ length: Math.min(16, queue.length) }, async () => {
      for (let m = queue.shift(); m; m = queue.shift()) {
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
        const row = {
          listener_id: listener.id,
          hostname: m.hostname,
          checked_at: nowIso(),
          status,
          expected_fingerprint: m.fingerprint_sha256,
          served_fingerprint: served?.fingerprint ?? null,
          served_subject: served?.subject ?? null,
          detail,
        };
        await db
          .insertInto("listener_checks")
          .values(row)
          .onConflict((oc) => oc.columns(["listener_id", "hostname"]).doUpdateSet({ ...row }))
          .execute();
        const before = previous.get(m.hostname);
        const changed = before?.status !== status || before?.served_fingerprint !== row.served_fingerprint;
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
    const mapped = new Set(mappings.map((m) => m.hostname));
    const stale = [...previous.keys()].filter((h) => !mapped.has(h));
    if (stale.length) await db.deleteFrom("listener_checks").where("listener_id", "=", listener.id).where("hostname", "in", stale).execute();
  }
}
