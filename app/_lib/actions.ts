import "server-only";
import { storageFailure } from "@/lib/db/failure";
import { AppError } from "@/lib/errors";
import { logger } from "@/lib/log";

export type ActionFailure = { message: string; errors?: Record<string, string[]> };

/** What a server action returns for an error: the safe message, or a generic one with the details logged. */
export function actionFailure(err: unknown, what: string): ActionFailure {
  if (err instanceof AppError) return { message: err.message, errors: err.fieldErrors };
  const storage = storageFailure(err);
  logger().error({ err }, `${what} failed${storage ? `: ${storage.message}` : ""}`);
  if (storage) return { message: storage.message };
  return { message: "something went wrong on the server; nothing was saved. The details are in the console's log." };
}
