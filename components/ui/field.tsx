import type { InputHTMLAttributes, ReactNode, SelectHTMLAttributes, TextareaHTMLAttributes } from "react";

const inputClass =
  "block w-full rounded-md border-0 px-3 py-2 text-slate-900 shadow-sm ring-1 ring-inset ring-slate-300 placeholder:text-slate-400 focus:ring-2 focus:ring-inset focus:ring-indigo-600 aria-[invalid=true]:ring-red-500 sm:text-sm";

type Common = { name: string; label: string; hint?: ReactNode; errors?: string[] };

function Frame({ name, label, hint, errors, children }: Common & { children: ReactNode }) {
  return (
    <div className="space-y-1">
      <label htmlFor={name} className="block text-sm font-medium text-slate-800">
        {label}
      </label>
      {children}
      {hint ? (
        <p id={`${name}-hint`} className="text-xs text-slate-500">
          {hint}
        </p>
      ) : null}
      <div id={`${name}-error`} aria-live="polite" aria-atomic="true">
        {errors?.map((e) => (
          <p key={e} className="text-sm text-red-600">
            {e}
          </p>
        ))}
      </div>
    </div>
  );
}

const describedBy = (name: string, hint?: ReactNode) => `${hint ? `${name}-hint ` : ""}${name}-error`;

export function TextField({ name, label, hint, errors, ...props }: Common & InputHTMLAttributes<HTMLInputElement>) {
  return (
    <Frame name={name} label={label} hint={hint} errors={errors}>
      <input id={name} name={name} aria-invalid={errors?.length ? true : undefined} aria-describedby={describedBy(name, hint)} className={inputClass} {...props} />
    </Frame>
  );
}

export function TextAreaField({ name, label, hint, errors, ...props }: Common & TextareaHTMLAttributes<HTMLTextAreaElement>) {
  return (
    <Frame name={name} label={label} hint={hint} errors={errors}>
      <textarea id={name} name={name} aria-invalid={errors?.length ? true : undefined} aria-describedby={describedBy(name, hint)} className={`${inputClass} font-mono`} {...props} />
    </Frame>
  );
}

export function SelectField({
  name,
  label,
  hint,
  errors,
  options,
  ...props
}: Common & SelectHTMLAttributes<HTMLSelectElement> & { options: { value: string; label: string }[] }) {
  return (
    <Frame name={name} label={label} hint={hint} errors={errors}>
      <select id={name} name={name} aria-invalid={errors?.length ? true : undefined} aria-describedby={describedBy(name, hint)} className={inputClass} {...props}>
        {options.map((o) => (
          <option key={o.value} value={o.value}>
            {o.label}
          </option>
        ))}
      </select>
    </Frame>
  );
}

export function FormMessage({ message, tone = "error" }: { message?: string | null; tone?: "error" | "success" }) {
  return (
    <div aria-live="polite" data-testid="form-message">
      {message ? (
        <p role="status" className={`rounded-md px-3 py-2 text-sm ${tone === "error" ? "bg-red-50 text-red-700" : "bg-emerald-50 text-emerald-800"}`}>
          {message}
        </p>
      ) : null}
    </div>
  );
}
