import type { Metadata } from "next";
import { requirePageUser } from "@/app/_lib/session";
import { DnsSettings } from "@/components/settings/dns-settings";
import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";
import { latestZoneTests, listCredentials } from "@/lib/dns/credentials";

export const metadata: Metadata = { title: "DNS" };

export default async function DnsSettingsPage() {
  const user = await requirePageUser();
  const config = getConfig();
  const db = getDb();
  return (
    <DnsSettings
      credentials={await listCredentials(db)}
      tests={await latestZoneTests(db)}
      isAdmin={user.role === "admin"}
      environment={{ cloudflareApiUrl: config.cloudflareApiUrl ?? null, resolvers: config.dnsResolvers }}
    />
  );
}
