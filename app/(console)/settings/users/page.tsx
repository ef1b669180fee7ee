import type { Metadata } from "next";
import { requirePageUser } from "@/app/_lib/session";
import { UserSettings } from "@/components/settings/user-settings";
import { getDb } from "@/lib/db";
import { listUsers } from "@/lib/users";

export const metadata: Metadata = { title: "Users" };

export default async function UsersPage() {
  const user = await requirePageUser();
  return <UserSettings users={await listUsers(getDb())} isAdmin={user.role === "admin"} />;
}
