"use server";

import { redirect } from "next/navigation";
import { z } from "zod";
import { clientIp } from "@/app/_lib/session";
import { getDb } from "@/lib/db";
import { AppError } from "@/lib/errors";
import { completeSetup } from "@/lib/users";

export type SetupState = { message?: string; errors?: Record<string, string[] | undefined> } | undefined;

const setupSchema = z
  .object({
    token: z.string().min(1).max(200),
    email: z.string().trim().max(320),
    password: z.string().max(200),
    confirm: z.string().max(200),
  })
  .refine((v) => v.password === v.confirm, { path: ["confirm"], message: "the two passwords differ" });

export async function createFirstAdmin(_prev: SetupState, formData: FormData): Promise<SetupState> {
  const parsed = setupSchema.safeParse(Object.fromEntries(formData));
  if (!parsed.success) return { errors: z.flattenError(parsed.error).fieldErrors, message: "check the highlighted fields" };
  try {
    await completeSetup(getDb(), { ...parsed.data, ip: (await clientIp()) ?? undefined });
  } catch (err) {
    if (err instanceof AppError) return { message: err.message, errors: err.fieldErrors };
    throw err;
  }
  redirect("/login?created=1");
}
