"use server";

import { AuthError } from "next-auth";
import { z } from "zod";
import { signIn } from "@/auth";
import { storageFailure } from "@/lib/db/failure";
import { logger } from "@/lib/log";

export type LoginState = { message?: string; errors?: { email?: string[]; password?: string[] } } | undefined;

const loginSchema = z.object({
  email: z.string().trim().min(1, "enter your email address").max(320),
  password: z.string().min(1, "enter your password").max(1000),
  callbackUrl: z.string().max(2000).optional(),
});

// Only same-site paths may follow a login; anything else goes to the dashboard.
const safeCallback = (url?: string) => (url && url.startsWith("/") && !url.startsWith("//") ? url : "/");

export async function authenticate(_prev: LoginState, formData: FormData): Promise<LoginState> {
  const parsed = loginSchema.safeParse(Object.fromEntries(formData));
  if (!parsed.success) return { errors: z.flattenError(parsed.error).fieldErrors, message: "enter your email and password" };
  try {
    await signIn("credentials", {
      email: parsed.data.email,
      password: parsed.data.password,
      redirectTo: safeCallback(parsed.data.callbackUrl),
    });
  } catch (error) {
    if (error instanceof AuthError) {
      const code = (error as AuthError & { code?: string }).code ?? "";
      if (code.startsWith("throttled")) {
        const seconds = Number(code.split(":")[1]) || 300;
        const minutes = Math.max(1, Math.ceil(seconds / 60));
        return {
          message: `Too many failed sign-ins. Sign-in is paused for this account or address; try again in ${minutes} minute${minutes === 1 ? "" : "s"}.`,
        };
      }
      // Auth.js wraps what authorize() threw: a database that is down is not a wrong password.
      const storage = storageFailure(error.cause?.err);
      if (storage) {
        logger().error({ err: error.cause?.err }, `a sign-in failed: ${storage.message}`);
        return { message: `You cannot sign in right now: ${storage.message}.` };
      }
      return { message: "That email and password do not match an account." };
    }
    throw error; // the redirect after a successful sign-in
  }
  return undefined;
}
