"use client";

import { useState } from "react";
import type { ApiFailure, FieldErrors } from "./api";

export type Message = { text: string; tone: "error" | "success" };

/** What a request came to: an `ApiResult`, or a check in the browser that stopped it before it was sent. */
export type SubmitOutcome<T> = { ok: true; data: T } | { ok: false; error: ApiFailure };

export type SubmitOptions = {
  /** Names the request in `busy`, for a card whose buttons each say which one is working. */
  action?: string;
  /** What the user sees of a failure: fields renamed to the inputs that show them, or folded into the message. */
  showFailure?: (failure: ApiFailure) => ApiFailure;
  /** For a button outside the form: leave the form's field errors as they are. */
  keepErrors?: boolean;
};

/** The outcome of a check in the browser that found fields to fix: nothing is sent. */
export const notSent = (message: string, fields: FieldErrors): { ok: false; error: ApiFailure } => ({ ok: false, error: { message, fields } });

/** A `showFailure` for an API that names fields otherwise than the form's inputs. */
export const renameFields =
  (rename: (field: string) => string) =>
  ({ fields, ...failure }: ApiFailure): ApiFailure => ({ ...failure, fields: Object.fromEntries(Object.entries(fields).map(([field, errors]) => [rename(field), errors])) });

export const UNREACHABLE = "could not reach the console; check your connection";

/**
 * The state a form keeps around a request to the API: which request is running, the field errors
 * and the message. `submit` clears the last errors and message, shows a failure, and hands a success
 * to `onSuccess`, which sets its own message.
 */
export function useApiSubmit() {
  const [busy, setBusy] = useState<string | null>(null);
  const [errors, setErrors] = useState<FieldErrors>({});
  const [message, setMessage] = useState<Message | null>(null);

  async function submit<T>(request: () => Promise<SubmitOutcome<T>>, onSuccess: (data: T) => void, { action = "submit", showFailure, keepErrors = false }: SubmitOptions = {}) {
    setBusy(action);
    if (!keepErrors) setErrors({});
    setMessage(null);
    try {
      const result = await request();
      if (!result.ok) {
        const shown = showFailure ? showFailure(result.error) : result.error;
        if (!keepErrors) setErrors(shown.fields);
        setMessage({ text: shown.message, tone: "error" });
        return;
      }
      onSuccess(result.data);
    } catch {
      setMessage({ text: UNREACHABLE, tone: "error" });
    } finally {
      setBusy(null);
    }
  }

  return { pending: busy !== null, busy, errors, message, setMessage, submit };
}
