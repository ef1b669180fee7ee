import type { Metadata } from "next";
import { Dashboard } from "@/components/certificates/dashboard";
import { dashboardSummary } from "@/lib/certificates";
import { getDb } from "@/lib/db";

export const metadata: Metadata = { title: "Dashboard" };

export default async function DashboardPage() {
  return <Dashboard summary={await dashboardSummary(getDb())} />;
}
