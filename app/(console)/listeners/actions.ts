"use server";

import { revalidatePath } from "next/cache";
import { redirect } from "next/navigation";
import { z } from "zod";
import { actionFailure } from "@/app/_lib/actions";
import { requireActor } from "@/app/_lib/session";
import { getDb } from "@/lib/db";
import { AppError } from "@/lib/errors";
import {
  createListener,
  deleteListener,
  getListener,
  addMapping,
  removeMapping,
  serveCertificateOnListener,
  setMappings,
  updateListener,
  type ListenerView,
} from "@/lib/listeners";

export type ListenerFormState =
  | { message?: string; errors?: Record<string, string[] | undefined>; values?: Record<string, string> }
  | undefined;

export type ListenerActionState =
  | { ok?: boolean; message?: string; errors?: Record<string, string[] | undefined>; mapped?: string[]; warnings?: string[] }
  | undefined;

const LISTENER_FIELDS = ["name", "kind", "bindAddress", "port", "upstreamUrl", "upstreamTlsVerify", "minTlsVersion", "defaultCertificateId", "fallbackPolicy", "httpAction", "redirectPort"] as const;

const formText = z.string().max(4000, "that is too long").optional();

// The form's shape: strings as a browser sends them, and a checkbox that is absent when unticked.
// The listener's own rules (ports, addresses, URLs) are checked by lib/listeners.
const listenerFormSchema = z
  .object({
    name: formText,
    kind: formText,
    bindAddress: formText,
    port: formText,
    upstreamUrl: formText,
    upstreamTlsVerify: formText,
    minTlsVersion: formText,
    defaultCertificateId: formText,
    fallbackPolicy: formText,
    httpAction: formText,
    redirectPort: formText,
    enabled: formText,
  })
  .transform(({ enabled, ...fields }) => ({ ...fields, enabled: enabled === "on" }));

const idSchema = z.string({ error: "the form is missing the listener" }).trim().min(1, "the form is missing the listener").max(100);

const idFormSchema = z.object({ id: idSchema });
const serveFormSchema = z.object({ listenerId: idSchema, certificateId: z.string().trim().min(1, "the form is missing the certificate").max(100) });
const addMappingSchema = z.object({
  listenerId: idSchema,
  hostname: z.string().trim().min(1, "enter the name clients ask for, like www.example.com").max(300, "use at most 300 characters"),
  certificateId: z.string({ error: "choose a certificate" }).trim().min(1, "choose a certificate").max(100),
});
const removeMappingSchema = z.object({ listenerId: idSchema, remove: z.string().trim().min(1).max(300) });
const saveMappingsSchema = z.object({
  listenerId: idSchema,
  mappings: z.array(z.object({ hostname: z.string().trim().max(300), certificateId: z.string().trim().max(100) })).max(10_000),
});

function formObject(formData: FormData, keys: readonly string[]): Record<string, string | undefined> {
  return Object.fromEntries(keys.map((k) => [k, formData.has(k) ? String(formData.get(k)) : undefined]));
}

function parseOrThrow<T extends z.ZodType>(schema: T, input: unknown): z.output<T> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    throw new AppError("validation_failed", parsed.error.issues.map((i) => i.message).join("; "), z.flattenError(parsed.error).fieldErrors as Record<string, string[]>);
  }
  return parsed.data;
}

function typedValues(formData: FormData): Record<string, string> {
  return Object.fromEntries([...LISTENER_FIELDS, "enabled"].map((k) => [k, String(formData.get(k) ?? "")]));
}

/** A listener's stored settings as the input its update takes, so that one setting can change alone. */
function inputOf(listener: ListenerView) {
  return {
    name: listener.name,
    kind: listener.kind,
    bindAddress: listener.bindAddress,
    port: listener.port,
    upstreamUrl: listener.upstreamUrl ?? undefined,
    upstreamTlsVerify: listener.upstreamTlsVerify,
    minTlsVersion: listener.minTlsVersion,
    defaultCertificateId: listener.defaultCertificateId ?? undefined,
    fallbackPolicy: listener.fallbackPolicy,
    httpAction: listener.httpAction ?? undefined,
    redirectPort: listener.redirectPort ?? undefined,
    enabled: listener.enabled,
  };
}

async function requireListener(id: string) {
  const listener = await getListener(getDb(), id);
  if (!listener) throw new AppError("not_found", "that listener was not found; it may have been deleted");
  return listener;
}

const refresh = (listenerId: string) => {
  revalidatePath("/listeners");
  revalidatePath(`/listeners/${listenerId}`);
};

export async function createListenerAction(_prev: ListenerFormState, formData: FormData): Promise<ListenerFormState> {
  let id: string;
  try {
    const actor = await requireActor("admin");
    const input = parseOrThrow(listenerFormSchema, formObject(formData, [...LISTENER_FIELDS, "enabled"]));
    id = (await createListener(getDb(), actor, input)).id;
  } catch (err) {
    return { ...actionFailure(err, "listener action"), values: typedValues(formData) };
  }
  revalidatePath("/listeners");
  redirect(`/listeners/${id}`);
}

export async function updateListenerAction(_prev: ListenerFormState, formData: FormData): Promise<ListenerFormState> {
  let id: string;
  try {
    const actor = await requireActor("admin");
    id = parseOrThrow(idFormSchema, formObject(formData, ["id"])).id;
    const input = parseOrThrow(listenerFormSchema, formObject(formData, [...LISTENER_FIELDS, "enabled"]));
    await updateListener(getDb(), actor, id, input);
  } catch (err) {
    return { ...actionFailure(err, "listener action"), values: typedValues(formData) };
  }
  refresh(id);
  redirect(`/listeners/${id}`);
}

export async function deleteListenerAction(_prev: ListenerActionState, formData: FormData): Promise<ListenerActionState> {
  try {
    const actor = await requireActor("admin");
    const { id } = parseOrThrow(idFormSchema, formObject(formData, ["id"]));
    await deleteListener(getDb(), actor, id);
  } catch (err) {
    return actionFailure(err, "listener action");
  }
  revalidatePath("/listeners");
  redirect("/listeners");
}

export async function toggleListenerAction(_prev: ListenerActionState, formData: FormData): Promise<ListenerActionState> {
  try {
    const actor = await requireActor("admin");
    const { id } = parseOrThrow(idFormSchema, formObject(formData, ["id"]));
    const listener = await requireListener(id);
    const updated = await updateListener(getDb(), actor, id, { ...inputOf(listener), enabled: !listener.enabled });
    refresh(id);
    return { ok: true, message: updated.enabled ? `Listener "${updated.name}" enabled.` : `Listener "${updated.name}" disabled; its port is closed.` };
  } catch (err) {
    const failure = actionFailure(err, "listener action");
    // The toggle has no fields of its own: say which setting stopped it (usually the port).
    const details = Object.values(failure.errors ?? {}).flat();
    return { message: details.length ? `${failure.message}: ${details.join("; ")}` : failure.message };
  }
}

export async function saveMappingsAction(_prev: ListenerActionState, formData: FormData): Promise<ListenerActionState> {
  try {
    const actor = await requireActor("admin");
    const hostnames = formData.getAll("hostname").map(String);
    const certificateIds = formData.getAll("certificateId").map(String);
    const { listenerId, mappings } = parseOrThrow(saveMappingsSchema, {
      listenerId: formData.get("listenerId") ?? undefined,
      mappings: hostnames.map((hostname, i) => ({ hostname, certificateId: certificateIds[i] ?? "" })),
    });
    const result = await setMappings(getDb(), actor, listenerId, { mappings });
    refresh(listenerId);
    return { ok: true, message: `Mappings saved (${result.mappings.length}).`, warnings: result.warnings };
  } catch (err) {
    return actionFailure(err, "listener action");
  }
}

export async function addMappingAction(_prev: ListenerActionState, formData: FormData): Promise<ListenerActionState> {
  try {
    const actor = await requireActor("admin");
    const { listenerId, hostname, certificateId } = parseOrThrow(addMappingSchema, formObject(formData, ["listenerId", "hostname", "certificateId"]));
    const added = await addMapping(getDb(), actor, listenerId, { hostname, certificateId });
    refresh(listenerId);
    return { ok: true, message: `Mapped ${added.hostname} to "${added.certificateName}".`, mapped: [added.hostname], warnings: added.warnings };
  } catch (err) {
    return actionFailure(err, "listener action");
  }
}

export async function removeMappingAction(_prev: ListenerActionState, formData: FormData): Promise<ListenerActionState> {
  try {
    const actor = await requireActor("admin");
    const { listenerId, remove } = parseOrThrow(removeMappingSchema, formObject(formData, ["listenerId", "remove"]));
    await removeMapping(getDb(), actor, listenerId, remove);
    refresh(listenerId);
    return { ok: true, message: `Removed ${remove}.` };
  } catch (err) {
    return actionFailure(err, "listener action");
  }
}

export async function serveCertificateAction(_prev: ListenerActionState, formData: FormData): Promise<ListenerActionState> {
  try {
    const actor = await requireActor("admin");
    const { listenerId, certificateId } = parseOrThrow(serveFormSchema, formObject(formData, ["listenerId", "certificateId"]));
    const listener = await requireListener(listenerId);
    const result = await serveCertificateOnListener(getDb(), actor, listenerId, certificateId);
    refresh(listenerId);
    revalidatePath(`/certificates/${certificateId}`);
    if (result.mapped.length === 0) {
      return { message: `Nothing was mapped on "${listener.name}": this certificate has no DNS names. Make it the listener's default certificate instead.` };
    }
    return {
      ok: true,
      message: `Serving on "${listener.name}": ${result.mapped.join(", ")}.`,
      mapped: result.mapped,
      warnings: result.warnings.filter((w) => result.mapped.some((name) => w.startsWith(`${name}: `))),
    };
  } catch (err) {
    return actionFailure(err, "listener action");
  }
}
