"use client";

import Link from "next/link";
import { usePathname } from "next/navigation";
import { useState } from "react";

const ITEMS = [
  { href: "/", label: "Dashboard" },
  { href: "/certificates", label: "Certificates" },
  { href: "/listeners", label: "Listeners" },
  { href: "/events", label: "Events" },
  { href: "/settings", label: "Settings" },
];

export function Nav({ email, role, signOutAction }: { email: string; role: string; signOutAction: () => Promise<void> }) {
  const pathname = usePathname();
  const [open, setOpen] = useState(false);
  const isActive = (href: string) => (href === "/" ? pathname === "/" : pathname.startsWith(href));
  return (
    <header className="border-b border-slate-200 bg-white">
      <div className="mx-auto flex max-w-6xl items-center justify-between gap-4 px-4 py-3">
        <Link href="/" className="text-lg font-bold text-indigo-700">
          Portcullis
        </Link>
        <button
          type="button"
          className="rounded-md px-2 py-1 text-sm ring-1 ring-slate-300 md:hidden"
          aria-expanded={open}
          aria-controls="main-nav"
          onClick={() => setOpen((v) => !v)}
        >
          Menu
        </button>
        <nav
          id="main-nav"
          aria-label="Main"
          className={`${open ? "flex" : "hidden"} absolute left-0 right-0 top-14 z-10 flex-col gap-1 border-b border-slate-200 bg-white px-4 pb-3 md:static md:flex md:flex-row md:border-0 md:p-0`}
        >
          {ITEMS.map((item) => (
            <Link
              key={item.href}
              href={item.href}
              aria-current={isActive(item.href) ? "page" : undefined}
              onClick={() => setOpen(false)}
              className={`rounded-md px-3 py-2 text-sm font-medium ${isActive(item.href) ? "bg-indigo-50 text-indigo-700" : "text-slate-700 hover:bg-slate-100"}`}
            >
              {item.label}
            </Link>
          ))}
          <form action={signOutAction} className="border-t border-slate-200 pt-2 md:hidden">
            <span className="block px-3 py-1 text-xs text-slate-500">{email} ({role})</span>
            <button type="submit" className="px-3 py-2 text-sm text-slate-700 underline">
              Sign out
            </button>
          </form>
        </nav>
        <div className="hidden items-center gap-3 text-sm md:flex">
          <span className="text-slate-600" data-testid="current-user">
            {email} <span className="rounded bg-slate-100 px-1.5 py-0.5 text-xs">{role}</span>
          </span>
          <form action={signOutAction}>
            <button type="submit" className="text-slate-700 underline hover:text-slate-900">
              Sign out
            </button>
          </form>
        </div>
      </div>
    </header>
  );
}
