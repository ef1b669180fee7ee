import type { Db } from "../db";
import { recordEvent } from "../events";
import { nowIso } from "../ids";
import { EXPIRY_THRESHOLDS_DAYS } from "./constants";

// Expiry notices: a tls.expiring event when a certificate version crosses 30, 14, 7 or 1 days before
// its expiry, once each, recorded in expiry_notices (primary key: certificate, fingerprint, threshold)
// so that any number of workers send it once. A version first seen at 5 days left gets only the
// 7-day notice: the most urgent threshold crossed, not every one. tls.expired is not sent here:
// markExpiredCertificates (lib/certificates) sends it, once per version (threshold 0).

const DAY_MS = 24 * 60 * 60_000;

export type ExpiryNotice = { certificateId: string; name: string; fingerprint: string; thresholdDays: number; notAfter: string };

/** The most urgent threshold a certificate with this much time left has crossed, if any. */
export function crossedThreshold(msLeft: number): number | undefined {
  if (msLeft <= 0) return undefined;
  let crossed: number | undefined;
  for (const days of EXPIRY_THRESHOLDS_DAYS) if (msLeft <= days * DAY_MS) crossed = days;
  return crossed;
}

export async function scanExpiry(db: Db, now: Date = new Date()): Promise<ExpiryNotice[]> {
  const horizon = nowIso(new Date(now.getTime() + EXPIRY_THRESHOLDS_DAYS[0] * DAY_MS));
  const certificates = await db
    .selectFrom("certificates")
    .select(["id", "name", "not_after", "fingerprint_sha256"])
    .where("status", "in", ["active", "renewing", "failed"])
    .where("not_after", "is not", null)
    .where("fingerprint_sha256", "is not", null)
    .where("not_after", "<=", horizon)
    .where("not_after", ">", nowIso(now))
    .execute();
  const sent: ExpiryNotice[] = [];
  for (const cert of certificates) {
    const notAfter = new Date(cert.not_after!);
    const threshold = crossedThreshold(notAfter.getTime() - now.getTime());
    if (threshold === undefined) continue;
    const fingerprint = cert.fingerprint_sha256!;
    // Already told at this threshold or a more urgent one (a 1-day notice makes a later 7-day one moot).
    const earlier = await db
      .selectFrom("expiry_notices")
      .select("threshold_days")
      .where("certificate_id", "=", cert.id)
      .where("fingerprint_sha256", "=", fingerprint)
      .where("threshold_days", "<=", threshold)
      .where("threshold_days", ">", 0)
      .executeTakeFirst();
    if (earlier) continue;
    const notice = await db.transaction().execute(async (trx) => {
      const inserted = await trx
        .insertInto("expiry_notices")
        .values({ certificate_id: cert.id, fingerprint_sha256: fingerprint, threshold_days: threshold, at: nowIso(now) })
        .onConflict((oc) => oc.columns(["certificate_id", "fingerprint_sha256", "threshold_days"]).doNothing())
        .returning("threshold_days")
        .executeTakeFirst();
      if (!inserted) return undefined;
      const daysLeft = Math.max(0, Math.floor((notAfter.getTime() - now.getTime()) / DAY_MS));
      const left = daysLeft === 0 ? `in ${Math.max(1, Math.round((notAfter.getTime() - now.getTime()) / 3_600_000))} hours` : `in ${daysLeft} day${daysLeft === 1 ? "" : "s"}`;
      await recordEvent(
        trx,
        {
          type: "tls.expiring",
          severity: threshold <= 1 ? "error" : "warning",
          certificateId: cert.id,
          message: `certificate "${cert.name}" expires ${left}, on ${cert.not_after!.slice(0, 16).replace("T", " ")} UTC (${threshold}-day notice)`,
          detail: { thresholdDays: threshold, daysLeft, notAfter: cert.not_after, fingerprintSha256: fingerprint },
        },
        now,
      );
      return { certificateId: cert.id, name: cert.name, fingerprint, thresholdDays: threshold, notAfter: cert.not_after! };
    });
    if (notice) sent.push(notice);
  }
  return sent;
}
