// The browser side of the REST API for the console's forms: send JSON, and read the API's
// `{ error: { message, fields } }` as one shape, so that every form shows errors the same way.

export type FieldErrors = Record<string, string[]>;
export type ApiFailure = { message: string; fields: FieldErrors };
export type ApiResult<T> = { ok: true; data: T } | { ok: false; error: ApiFailure; status: number };
export type ApiMethod = "POST" | "PUT" | "PATCH" | "DELETE";

type ErrorBody = { error?: { message?: string; fields?: FieldErrors } } | null;

function request(method: ApiMethod, url: string, body: unknown): Promise<Response> {
  if (body === undefined) return fetch(url, { method });
  return fetch(url, { method, headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
}

// A 204, an empty body or a proxy's HTML page reads as null rather than throwing.
const readJson = (response: Response): Promise<unknown> => response.json().catch(() => null);

function failed(json: unknown, status: number): { ok: false; error: ApiFailure; status: number } {
  const error = (json as ErrorBody)?.error;
  return { ok: false, error: { message: error?.message ?? `the server answered ${status}`, fields: error?.fields ?? {} }, status };
}

/** `body` is sent as JSON when given. An answer without a body gives `data: null`: say so in `T`. */
export async function sendJson<T>(method: ApiMethod, url: string, body?: unknown): Promise<ApiResult<T>> {
  const response = await request(method, url, body);
  const json = await readJson(response);
  return response.ok ? { ok: true, data: json as T } : failed(json, response.status);
}

export const postJson = <T>(url: string, body?: unknown): Promise<ApiResult<T>> => sendJson<T>("POST", url, body);

/** For an answer that is a file to save: its bytes and the name in Content-Disposition, if any. */
export async function fetchFile(method: ApiMethod, url: string, body?: unknown): Promise<ApiResult<{ blob: Blob; fileName: string | undefined }>> {
  const response = await request(method, url, body);
  if (!response.ok) return failed(await readJson(response), response.status);
  const fileName = /filename="([^"]+)"/.exec(response.headers.get("content-disposition") ?? "")?.[1];
  return { ok: true, data: { blob: await response.blob(), fileName } };
}
