import "server-only";
import { auth } from "@/auth";
import type { Actor } from "@/lib/audit";
import { getDb } from "@/lib/db";
import { storageFailure } from "@/lib/db/failure";
import { AppError } from "@/lib/errors";
import { logger } from "@/lib/log";
import { authenticateApiToken } from "@/lib/tokens";
import { getUser } from "@/lib/users";

export const MAX_JSON_BODY_BYTES = 64 * 1024;

export type ApiCaller = Actor & { id: string; role: "admin" | "viewer"; via: "token" | "session"; tokenId?: string };

export function errorResponse(err: unknown): Response {
  if (err instanceof AppError) {
    const body: Record<string, unknown> = { code: err.code, message: err.message };
    if (err.fieldErrors) body.fields = err.fieldErrors;
    return Response.json({ error: body }, { status: err.status, headers: { "Cache-Control": "no-store" } });
  }
  const storage = storageFailure(err);
  if (storage) {
    logger().error({ err }, `an API request failed: ${storage.message}`);
    return errorResponse(storage);
  }
  logger().error({ err }, "unexpected error in an API handler");
  return Response.json(
    { error: { code: "internal", message: "something went wrong on the server; the details are in the console's log" } },
    { status: 500 },
  );
}

async function authenticate(request: Request): Promise<ApiCaller> {
  const header = request.headers.get("authorization");
  const ip = request.headers.get("x-portcullis-client-ip");
  if (header) {
    const match = /^Bearer\s+(\S+)$/i.exec(header.trim());
    if (!match) throw new AppError("unauthenticated", "the Authorization header must be: Bearer <token>");
    const user = await authenticateApiToken(getDb(), match[1]);
    if (!user) throw new AppError("unauthenticated", "the API token is not valid (unknown or revoked); create one in Settings → API tokens");
    return { id: user.id, label: `${user.email} (token ${user.tokenId})`, role: user.role, ip, via: "token", tokenId: user.tokenId };
  }
  const session = await auth();
  const id = (session?.user as { id?: string } | undefined)?.id;
  const user = id ? await getUser(getDb(), id) : undefined;
  if (!user) throw new AppError("unauthenticated", "sign in, or send Authorization: Bearer <token>");
  return { id: user.id, label: user.email, role: user.role, ip, via: "session" };
}

type Handler<P> = (ctx: { request: Request; caller: ApiCaller; params: P }) => Promise<Response>;

/** Every API handler goes through here: authentication, the role check, and errors as JSON. */
export function apiRoute<P = Record<string, string>>(role: "admin" | "viewer", handler: Handler<P>) {
  return async (request: Request, context: { params: Promise<P> }) => {
    try {
      const caller = await authenticate(request);
      if (role === "admin" && caller.role !== "admin") {
        throw new AppError("forbidden", "this needs the admin role; your account is read-only (viewer)");
      }
      return await handler({ request, caller, params: await context.params });
    } catch (err) {
      return errorResponse(err);
    }
  };
}

/** Reads a JSON body with a size limit: a clear 413 or 400 instead of a crash. */
export async function readJson(request: Request, maxBytes = MAX_JSON_BODY_BYTES): Promise<unknown> {
  const type = request.headers.get("content-type") ?? "";
  if (!/^application\/json\b/i.test(type)) {
    throw new AppError("unsupported_media_type", "send the body as JSON with Content-Type: application/json");
  }
  const declared = Number(request.headers.get("content-length") ?? "0");
  if (declared > maxBytes) throw tooLarge(maxBytes);
  const reader = request.body?.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (reader) {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      size += value.byteLength;
      if (size > maxBytes) {
        await reader.cancel();
        throw tooLarge(maxBytes);
      }
      chunks.push(value);
    }
  }
  const text = Buffer.concat(chunks).toString("utf8");
  try {
    return JSON.parse(text);
  } catch {
    throw new AppError("bad_request", "the body is not valid JSON");
  }
}

const tooLarge = (max: number) =>
  new AppError("payload_too_large", `the body is larger than ${max >= 1024 * 1024 ? `${max / 1024 / 1024} MiB` : `${max / 1024} KiB`}; a certificate upload is at most 1 MiB per file`);

/** Certificate uploads carry PEM chains or a base64 PKCS#12 file. */
export const MAX_UPLOAD_BODY_BYTES = 3 * 1024 * 1024;
