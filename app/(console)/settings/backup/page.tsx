import type { Metadata } from "next";
import { requirePageUser } from "@/app/_lib/session";
import { BackupSettings } from "@/components/settings/backup-settings";
import { getConfig } from "@/lib/config";
import { describeDatabase } from "@/lib/db/connection";

export const metadata: Metadata = { title: "Backup" };

export default async function BackupSettingsPage() {
  const user = await requirePageUser();
  const config = getConfig();
  return <BackupSettings isAdmin={user.role === "admin"} database={describeDatabase(config.database)} keySource={config.secret ? "PORTCULLIS_SECRET" : `${config.dataDir}/secret.key`} />;
}
