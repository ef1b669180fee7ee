import { z } from "zod";
import { writeAudit, type Actor } from "../audit";
import type { Keyring } from "../crypto/seal";
import type { Db } from "../db";
import { AppError } from "../errors";
import { checkPassword } from "../users";
import { backupFileName, createBackup, MIN_PASSPHRASE_LENGTH, type KdfParams } from "./backup";

// Settings → Backup: an admin downloads a backup after typing their password again. The password
// proves the person at the keyboard is the admin (not someone at an unlocked browser); the passphrase
// encrypts the archive. Neither is stored or logged.

const MAX_REJECTIONS = 5;
const REJECTION_WINDOW_MS = 5 * 60_000;

const downloadInputSchema = z.object({
  password: z.string({ error: "type your password again" }).min(1, "type your password again").max(200, "use at most 200 characters"),
  passphrase: z
    .string({ error: `choose a backup passphrase of at least ${MIN_PASSPHRASE_LENGTH} characters` })
    .min(MIN_PASSPHRASE_LENGTH, `use at least ${MIN_PASSPHRASE_LENGTH} characters`)
    .max(1024, "use at most 1024 characters"),
});

export async function createBackupDownload(
  db: Db,
  keyring: Keyring,
  actor: Actor & { id: string },
  input: unknown,
  opts: { kdf?: KdfParams; now?: Date } = {},
): Promise<{ bytes: Buffer; fileName: string }> {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    throw new AppError("bad_request", 'the body must be a JSON object, like {"password":"…","passphrase":"…"}');
  }
  const parsed = downloadInputSchema.safeParse(input);
  if (!parsed.success) {
    throw new AppError("validation_failed", "no backup was made: check the highlighted fields", z.flattenError(parsed.error).fieldErrors as Record<string, string[]>);
  }
  // Five wrong passwords within five minutes lock the download for the rest of those minutes.
  const now = opts.now ?? new Date();
  const since = new Date(now.getTime() - REJECTION_WINDOW_MS).toISOString();
  const rejections = await db
    .selectFrom("audit_log")
    .select("at")
    .where("actor_id", "=", actor.id)
    .where("action", "=", "backup.password_rejected")
    .where("at", ">=", since)
    .orderBy("at")
    .execute();
  if (rejections.length >= MAX_REJECTIONS) {
    const minutes = Math.max(1, Math.ceil((Date.parse(rejections[rejections.length - MAX_REJECTIONS].at) + REJECTION_WINDOW_MS - now.getTime()) / 60_000));
    throw new AppError("throttled", `too many wrong passwords; try again in ${minutes} minute${minutes === 1 ? "" : "s"}`);
  }
  if (!(await checkPassword(db, actor.id, parsed.data.password))) {
    await writeAudit(db, actor, "backup.password_rejected", { type: "backup", id: null });
    throw new AppError("validation_failed", "that is not your password; no backup was made", { password: ["not your current password"] });
  }
  const { bytes, summary } = await createBackup(db, keyring, parsed.data.passphrase, opts);
  const fileName = backupFileName(opts.now);
  await writeAudit(db, actor, "backup.created", { type: "backup", id: fileName }, { bytes: bytes.length, tables: summary.tables });
  return { bytes, fileName };
}
