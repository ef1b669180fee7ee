/** One label/value row of a detail list (`<dl>`), stacked on a phone, side by side from `sm`. */
export function DetailRow({ label, children }: { label: string; children: React.ReactNode }) {
  return (
    <div className="grid gap-1 px-4 py-3 sm:grid-cols-3 sm:gap-4">
      <dt className="font-medium text-slate-600">{label}</dt>
      <dd className="sm:col-span-2">{children}</dd>
    </div>
  );
}
