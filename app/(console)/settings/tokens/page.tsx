import type { Metadata } from "next";
import { requirePageUser } from "@/app/_lib/session";
import { TokenSettings } from "@/components/settings/token-settings";
import { getDb } from "@/lib/db";
import { listApiTokens } from "@/lib/tokens";

export const metadata: Metadata = { title: "API tokens" };

export default async function TokensPage() {
  const user = await requirePageUser();
  const tokens = await listApiTokens(getDb(), user.role === "admin" ? undefined : user.id);
  return <TokenSettings tokens={tokens} isAdmin={user.role === "admin"} />;
}
