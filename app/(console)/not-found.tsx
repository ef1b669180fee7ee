import Link from "next/link";

export default function NotFound() {
  return (
    <div className="space-y-2">
      <h1 className="text-2xl font-bold">Not found</h1>
      <p className="text-sm text-slate-600">
        Nothing lives at this address; it may have been deleted. <Link href="/" className="text-indigo-700 underline">Back to the dashboard</Link>
      </p>
    </div>
  );
}
