import Link from "next/link";
import type { ServiceWarning } from "@/lib/warnings";

/**
 * The warning slot on every console page: the console's own self-signed or local-CA certificate,
 * and listeners' self-signed, local-CA or fallback certificates, each with a link to its fix.
 * Rendered by the console layout, so the live stream's refresh on every event (a console
 * certificate swap records "console.tls_changed") brings it up to date without a reload.
 */
export function ServiceBanner({ warnings }: { warnings: ServiceWarning[] }) {
  if (!warnings.length) return null;
  return (
    <div role="region" aria-label="Warnings" data-testid="service-banner" className="border-b border-amber-300 bg-amber-50">
      {warnings.map((w) => (
        <p key={w.id} data-warning-id={w.id} className="mx-auto max-w-6xl px-4 py-2 text-sm text-amber-900">
          <span className="font-semibold">Warning:</span> {w.message}{" "}
          <Link href={w.href} className="font-medium underline">
            {w.linkText}
          </Link>
        </p>
      ))}
    </div>
  );
}
