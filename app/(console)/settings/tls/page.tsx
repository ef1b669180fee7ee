import type { Metadata } from "next";
import { requirePageUser } from "@/app/_lib/session";
import { TlsSettings } from "@/components/settings/tls-settings";
import { getConfig } from "@/lib/config";
import { getConsoleTlsStatus } from "@/lib/console/tls-status";
import { getDb } from "@/lib/db";

export const metadata: Metadata = { title: "Console TLS" };

export default async function TlsSettingsPage() {
  const user = await requirePageUser();
  const config = getConfig();
  const status = await getConsoleTlsStatus(getDb(), config);
  const host = config.host === "0.0.0.0" || config.host === "::" ? "<this-host>" : config.host.includes(":") ? `[${config.host}]` : config.host;
  const consoleUrl = config.publicUrl ?? `${status.https ? "https" : "http"}://${host}:${config.port}`;
  return <TlsSettings initial={status} isAdmin={user.role === "admin"} consoleUrl={consoleUrl} />;
}
