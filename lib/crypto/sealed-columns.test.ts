import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { accountKeyContext, eabContext } from "../acme/accounts";
import { pendingKeyContext } from "../acme/engine";
import { secretContext } from "../alerts/constants";
import { keyContext } from "../certificates/index";
import { LOCAL_CA_KEY, LOCAL_CA_KEY_CONTEXT, LOCAL_SERVER_KEY, LOCAL_SERVER_KEY_CONTEXT, PROVIDED_KEY, PROVIDED_KEY_CONTEXT, ACME_SELF_SIGNED_KEY, ACME_SELF_SIGNED_KEY_CONTEXT } from "../console/tls-store";
import { createTestDatabase, TEST_ENGINES, type TestDatabase } from "../db/testing";
import { tokenContext } from "../dns/credentials";
import { fallbackKeyContext } from "../listeners/edge";
import { populateInstallation } from "../ops/backup-fixtures";
import { newKeyring } from "../ops/backup-test-support";
import { SEAL_CHECK_CONTEXT, SEAL_CHECK_KEY } from "../runtime";
import { ENVELOPE_IN_TEXT, SEALED_COLUMNS, SEALED_SETTINGS, TABLES_IN_ORDER } from "./sealed-columns";

const contextOf = (table: string, column: string, row: Record<string, unknown>) => SEALED_COLUMNS.find((c) => c.table === table && c.column === column)?.context(row);

describe("the sealed-columns registry", () => {
  it("uses the same contexts as the code that seals", () => {
    const row = { id: "x1", certificate_id: "crt_9" };
    expect(contextOf("certificates", "sealed_key", row)).toBe(keyContext("x1"));
    expect(contextOf("certificates", "pending_sealed_key", row)).toBe(pendingKeyContext("x1"));
    expect(contextOf("certificate_versions", "sealed_key", row)).toBe(keyContext("crt_9"));
    expect(contextOf("acme_accounts", "sealed_key", row)).toBe(accountKeyContext("x1"));
    expect(contextOf("acme_accounts", "sealed_eab_hmac", row)).toBe(eabContext("x1"));
    expect(contextOf("dns_credentials", "sealed_token", row)).toBe(tokenContext("x1"));
    expect(contextOf("listeners", "fallback_sealed_key", row)).toBe(fallbackKeyContext("x1"));
    expect(contextOf("webhooks", "sealed_secret", row)).toBe(secretContext("x1"));
    expect(contextOf("acme_challenges", "sealed_key", row)).toBe("acme-challenge:x1");
    expect(SEALED_SETTINGS[SEAL_CHECK_KEY]).toEqual([SEAL_CHECK_CONTEXT]);
    expect(SEALED_SETTINGS[LOCAL_CA_KEY]).toEqual([LOCAL_CA_KEY_CONTEXT]);
    expect(SEALED_SETTINGS[LOCAL_SERVER_KEY]).toEqual([LOCAL_SERVER_KEY_CONTEXT]);
    expect(SEALED_SETTINGS[PROVIDED_KEY]).toEqual([PROVIDED_KEY_CONTEXT]);
    expect(SEALED_SETTINGS[ACME_SELF_SIGNED_KEY]).toEqual([ACME_SELF_SIGNED_KEY_CONTEXT]);
  });

  describe.each(TEST_ENGINES)("on %s, after fixtures of every kind", (kind) => {
    let t: TestDatabase;
    const keyring = newKeyring();
    beforeAll(async () => {
      t = await createTestDatabase(kind);
      await populateInstallation(t.db, keyring);
    }, 60_000);
    afterAll(async () => t?.destroy());

    it("lists every table of the schema in dependency order", async () => {
      const tables = (await t.db.introspection.getTables()).map((x) => x.name).sort();
      expect([...TABLES_IN_ORDER].sort()).toEqual(tables);
    });

    it("describes every column that holds an envelope, and each opens with the registry's context", async () => {
      const seen = new Set<string>();
      for (const meta of await t.db.introspection.getTables()) {
        const rows = (await t.db.selectFrom(meta.name as never).selectAll().execute()) as Record<string, unknown>[];
        for (const row of rows) {
          for (const [column, value] of Object.entries(row)) {
            if (typeof value !== "string") continue;
            for (const envelope of value.match(ENVELOPE_IN_TEXT) ?? []) {
              const where = `${meta.name}.${column}${meta.name === "settings" ? ` (${String(row.key)})` : ""}`;
              seen.add(where);
              if (meta.name === "settings" && column === "value") {
                const contexts = SEALED_SETTINGS[String(row.key)];
                expect(contexts, `${where} holds a sealed value: add the setting to SEALED_SETTINGS in lib/crypto/sealed-columns.ts`).toBeDefined();
                expect(contexts!.some((c) => { try { keyring.open(envelope, c); return true; } catch { return false; } }), where).toBe(true);
              } else {
                const context = contextOf(meta.name, column, row);
                expect(context, `${where} holds a sealed value: add it to SEALED_COLUMNS in lib/crypto/sealed-columns.ts`).toBeDefined();
                expect(() => keyring.open(envelope, context!), where).not.toThrow();
              }
            }
          }
        }
      }
      // The fixtures reach every registered column (else this test proves less than it claims).
      for (const c of SEALED_COLUMNS) expect(seen, `fixtures lack ${c.table}.${c.column}`).toContain(`${c.table}.${c.column}`);
      expect(seen).toContain("settings.value (seal_check)");
      expect(seen).toContain("settings.value (tls.local_ca)");
    });
  });
});
