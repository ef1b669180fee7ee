"use server";

import { revalidatePath } from "next/cache";
import { actionFailure } from "@/app/_lib/actions";
import { requireActor } from "@/app/_lib/session";
import { getDb } from "@/lib/db";
import { createApiToken, revokeApiToken } from "@/lib/tokens";
import { createUser } from "@/lib/users";

export type SettingsState =
  | { message?: string; errors?: Record<string, string[] | undefined>; token?: string; ok?: boolean }
  | undefined;

export async function createTokenAction(_prev: SettingsState, formData: FormData): Promise<SettingsState> {
  try {
    const actor = await requireActor("admin");
    const created = await createApiToken(getDb(), actor, { userId: actor.user.id, name: String(formData.get("name") ?? "") });
    revalidatePath("/settings/tokens");
    return { ok: true, token: created.token, message: `Token "${created.name}" created. Copy it now: it is shown only once.` };
  } catch (err) {
    return actionFailure(err, "settings action");
  }
}

export async function revokeTokenAction(_prev: SettingsState, formData: FormData): Promise<SettingsState> {
  try {
    const actor = await requireActor("admin");
    await revokeApiToken(getDb(), actor, String(formData.get("id") ?? ""));
    revalidatePath("/settings/tokens");
    return { ok: true, message: "Token revoked." };
  } catch (err) {
    return actionFailure(err, "settings action");
  }
}

export async function createUserAction(_prev: SettingsState, formData: FormData): Promise<SettingsState> {
  try {
    const actor = await requireActor("admin");
    const user = await createUser(getDb(), actor, {
      email: String(formData.get("email") ?? ""),
      password: String(formData.get("password") ?? ""),
      role: String(formData.get("role") ?? "viewer") as "admin",
    });
    revalidatePath("/settings/users");
    return { ok: true, message: `User ${user.email} (${user.role}) created.` };
  } catch (err) {
    return actionFailure(err, "settings action");
  }
}
