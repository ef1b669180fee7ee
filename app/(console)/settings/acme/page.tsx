import type { Metadata } from "next";
import { requirePageUser } from "@/app/_lib/session";
import { AcmeSettings } from "@/components/settings/acme-settings";
import { DIRECTORY_PRESETS, listAccounts } from "@/lib/acme/accounts";
import { caName } from "@/lib/acme/errors";
import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";

export const metadata: Metadata = { title: "ACME" };

export default async function AcmeSettingsPage() {
  const user = await requirePageUser();
  const config = getConfig();
  return (
    <AcmeSettings
      accounts={await listAccounts(getDb())}
      isAdmin={user.role === "admin"}
      presets={DIRECTORY_PRESETS.map((p) => ({ id: p.id, label: p.label, url: p.url }))}
      configured={{ directoryUrl: config.acme.directoryUrl, caName: caName(config.acme.directoryUrl), caBundle: config.acme.caBundle ?? null, email: config.acme.email ?? null }}
    />
  );
}
