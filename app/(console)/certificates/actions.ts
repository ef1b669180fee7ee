"use server";

import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";
import { actionFailure } from "@/app/_lib/actions";
import { requireActor } from "@/app/_lib/session";
import { createSelfSignedCertificateRecord, deleteCertificate } from "@/lib/certificates";
import { getConfig } from "@/lib/config";
import { getDb } from "@/lib/db";
import { getKeyring } from "@/lib/runtime";

export type FormState =
  | { message?: string; errors?: Record<string, string[] | undefined>; values?: Record<string, string> }
  | undefined;

export async function createSelfSigned(_prev: FormState, formData: FormData): Promise<FormState> {
  let id: string;
  try {
    const actor = await requireActor("admin");
    const cert = await createSelfSignedCertificateRecord(getDb(), getKeyring(getConfig()), actor, {
      name: formData.get("name") ?? undefined,
      domains: formData.get("domains") ?? "",
      keyType: formData.get("keyType") ?? undefined,
      validityDays: formData.get("validityDays") || undefined,
    });
    id = cert.id;
  } catch (err) {
    // Give the form back what was typed, so that a mistake costs one correction, not a retype.
    const values = Object.fromEntries(["name", "domains", "keyType", "validityDays"].map((k) => [k, String(formData.get(k) ?? "")]));
    return { ...actionFailure(err, "certificate action"), values };
  }
  revalidatePath("/certificates");
  redirect(`/certificates/${id}`);
}

export async function deleteCertificateAction(_prev: FormState, formData: FormData): Promise<FormState> {
  try {
    const actor = await requireActor("admin");
    await deleteCertificate(getDb(), actor, String(formData.get("id") ?? ""));
  } catch (err) {
    return actionFailure(err, "certificate action");
  }
  revalidatePath("/certificates");
  redirect("/certificates");
}
