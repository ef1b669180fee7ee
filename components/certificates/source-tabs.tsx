import Link from "next/link";

const SOURCES = [
  { id: "acme", label: "Let's Encrypt / ACME" },
  { id: "self_signed", label: "Self-signed" },
  { id: "upload", label: "Upload" },
  { id: "file", label: "On disk" },
] as const;

export type NewCertificateSource = (typeof SOURCES)[number]["id"];

export function SourceTabs({ current }: { current: NewCertificateSource }) {
  return (
    <nav aria-label="Certificate source" className="mt-3 flex flex-wrap gap-2 text-sm">
      {SOURCES.map((s) => (
        <Link
          key={s.id}
          href={`/certificates/new?source=${s.id}`}
          aria-current={s.id === current ? "page" : undefined}
          className={`rounded-md px-3 py-1.5 font-medium ${s.id === current ? "bg-indigo-50 text-indigo-700" : "text-slate-600 hover:bg-slate-100"}`}
        >
          {s.label}
        </Link>
      ))}
    </nav>
  );
}
