// The browser side of the REST API for the certificate forms: POST JSON, and the API's
// `{ error: { message, fields } }` as one shape, so that every form shows errors the same way.

export type ApiFailure = { message: string; fields: Record<string, string[]> };

export async function postJson<T>(url: string, body: unknown): Promise<{ ok: true; data: T } | { ok: false; error: ApiFailure }> {
  const response = await fetch(url, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
  const json = (await response.json().catch(() => null)) as { error?: { message?: string; fields?: Record<string, string[]> } } | null;
  if (!response.ok) {
    return { ok: false, error: { message: json?.error?.message ?? `the server answered ${response.status}`, fields: json?.error?.fields ?? {} } };
  }
  return { ok: true, data: json as T };
}
