import type { Metadata } from "next";

export const metadata: Metadata = { title: "Listeners" };

export default function ListenersPage() {
  return (
    <div className="space-y-3">
      <h1 className="text-2xl font-bold">Listeners</h1>
      <p className="max-w-2xl rounded-lg bg-white px-4 py-6 text-sm text-slate-600 ring-1 ring-slate-200" data-testid="listeners-empty">
        HTTPS and HTTP listeners — serving certificates by SNI name with hot reload — are not part of this version yet.
        Certificates you create now will be ready to map to listeners when they arrive.
      </p>
    </div>
  );
}
