import type { Metadata } from "next";
import Link from "next/link";
import { getConfig } from "@/lib/config";
import { getConsoleTlsStatus } from "@/lib/console/tls-status";
import { getDb } from "@/lib/db";
import { describeDatabase } from "@/lib/db/connection";

export const metadata: Metadata = { title: "Settings" };

export default async function SettingsPage() {
  const config = getConfig();
  const tls = await getConsoleTlsStatus(getDb(), config);
  const tlsSource = tls.modeSource === "env" ? `set by ${tls.locked.mode ?? "PORTCULLIS_TLS_MODE"}` : tls.modeSource === "settings" ? "chosen in Settings → TLS" : "default";
  return (
    <div className="space-y-6">
      <h1 className="text-2xl font-bold">Settings</h1>
      <ul className="grid gap-3 sm:grid-cols-2">
        <li>
          <Link href="/settings/tls" className="block rounded-lg bg-white p-4 ring-1 ring-slate-200 hover:ring-indigo-300">
            <span className="font-semibold">TLS</span>
            <span className="block text-sm text-slate-600">The console&apos;s own HTTPS: mode, certificate served, local CA, Let&apos;s Encrypt.</span>
          </Link>
        </li>
        <li>
          <Link href="/settings/tokens" className="block rounded-lg bg-white p-4 ring-1 ring-slate-200 hover:ring-indigo-300">
            <span className="font-semibold">API tokens</span>
            <span className="block text-sm text-slate-600">Bearer tokens for scripts and the REST API.</span>
          </Link>
        </li>
        <li>
          <Link href="/settings/users" className="block rounded-lg bg-white p-4 ring-1 ring-slate-200 hover:ring-indigo-300">
            <span className="font-semibold">Users</span>
            <span className="block text-sm text-slate-600">Admins and read-only viewers.</span>
          </Link>
        </li>
        <li>
          <Link href="/settings/acme" className="block rounded-lg bg-white p-4 ring-1 ring-slate-200 hover:ring-indigo-300">
            <span className="font-semibold">ACME</span>
            <span className="block text-sm text-slate-600">Accounts at Let&apos;s Encrypt and other CAs, with External Account Binding.</span>
          </Link>
        </li>
        <li>
          <Link href="/settings/dns" className="block rounded-lg bg-white p-4 ring-1 ring-slate-200 hover:ring-indigo-300">
            <span className="font-semibold">DNS</span>
            <span className="block text-sm text-slate-600">Cloudflare API tokens for DNS-01 and wildcard certificates.</span>
          </Link>
        </li>
        <li>
          <Link href="/settings/alerts" className="block rounded-lg bg-white p-4 ring-1 ring-slate-200 hover:ring-indigo-300">
            <span className="font-semibold">Alerts</span>
            <span className="block text-sm text-slate-600">Signed webhooks for failed renewals, expiring certificates and listener problems.</span>
          </Link>
        </li>
        <li>
          <Link href="/settings/backup" className="block rounded-lg bg-white p-4 ring-1 ring-slate-200 hover:ring-indigo-300">
            <span className="font-semibold">Backup</span>
            <span className="block text-sm text-slate-600">Download an encrypted backup of everything; restore it from the CLI.</span>
          </Link>
        </li>
        <li>
          <Link href="/settings/audit" className="block rounded-lg bg-white p-4 ring-1 ring-slate-200 hover:ring-indigo-300">
            <span className="font-semibold">Audit log</span>
            <span className="block text-sm text-slate-600">Who changed what, and when.</span>
          </Link>
        </li>
      </ul>
      <section className="rounded-lg bg-white p-4 text-sm ring-1 ring-slate-200" aria-labelledby="runtime-heading">
        <h2 id="runtime-heading" className="mb-2 font-semibold">
          This installation
        </h2>
        <dl className="grid gap-1 sm:grid-cols-[12rem_1fr]">
          <dt className="text-slate-600">Database</dt>
          <dd className="font-mono text-xs">{describeDatabase(config.database)}</dd>
          <dt className="text-slate-600">Console TLS mode</dt>
          <dd className="text-xs" data-testid="settings-tls-mode">
            <span className="font-mono">{tls.mode}</span> ({tlsSource}
            {tls.restartRequired ? "; restart required" : ""})
          </dd>
          <dt className="text-slate-600">Data directory</dt>
          <dd className="font-mono text-xs">{config.dataDir}</dd>
        </dl>
      </section>
    </div>
  );
}
