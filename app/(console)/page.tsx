import type { Metadata } from "next";
import { Dashboard } from "@/components/certificates/dashboard";
import { getConfig } from "@/lib/config";
import { dashboardOverview } from "@/lib/dashboard";
import { getDb } from "@/lib/db";

export const metadata: Metadata = { title: "Dashboard" };

export default async function DashboardPage() {
  return <Dashboard initial={await dashboardOverview(getDb(), getConfig())} />;
}
