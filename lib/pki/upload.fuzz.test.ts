import { createPrivateKey, X509Certificate } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { AppError } from "../errors";
import { validateUpload } from "./upload";
import { createFuzzMaterial, mutatedUpload, seededRandom } from "./upload-mutations";

const MUTATION_COUNT = 3000;
const SEED = 0x5eed_cafe;
const UPLOAD_FIELDS = ["certificate", "key", "chain", "passphrase", "file", "password"];
let leafPem: string;
let intermediatePem: string;
let rootPem: string;
let keyPem: string;

beforeAll(() => {
  ({ leafPem, intermediatePem, rootPem, keyPem } = createFuzzMaterial());
});

describe("validateUpload under mutated input", () => {
  it("accepts the unmutated material", () => {
    const result = validateUpload({ kind: "pem", certificatePem: leafPem + intermediatePem + rootPem, keyPem });
    expect(result.chainPem).toBe(leafPem + intermediatePem);
  });

  it(`either returns a matching leaf and key or refuses with a validation message, over ${MUTATION_COUNT} mutations`, () => {
    const random = seededRandom(SEED);
    let accepted = 0;
    let refused = 0;
    for (let iteration = 0; iteration < MUTATION_COUNT; iteration++) {
      const input = mutatedUpload(random, { leafPem, intermediatePem, rootPem, keyPem });
      let outcome: ReturnType<typeof validateUpload> | unknown;
      try {
        outcome = validateUpload(input);
      } catch (error) {
        outcome = error;
      }
      const context = `mutation ${iteration}: ${JSON.stringify(input).slice(0, 300)}`;
      if (outcome instanceof Error) {
        expect(outcome, context).toBeInstanceOf(AppError);
        const error = outcome as AppError;
        expect(error.code, context).toBe("validation_failed");
        expect(error.message.length, context).toBeGreaterThan(0);
        // The catch-all message means some library error went unhandled; every refusal here should be specific.
        expect(error.message, context).not.toMatch(/could not be checked/);
        const fields = Object.keys(error.fieldErrors ?? {});
        expect(fields.length, context).toBeGreaterThan(0);
        for (const field of fields) expect(UPLOAD_FIELDS, context).toContain(field);
        refused++;
      } else {
        const result = outcome as ReturnType<typeof validateUpload>;
        expect(new X509Certificate(result.leafPem).checkPrivateKey(createPrivateKey(result.privateKeyPem)), context).toBe(true);
        expect(result.chainPem.startsWith(result.leafPem), context).toBe(true);
        accepted++;
      }
    }
    expect(accepted).toBeGreaterThan(MUTATION_COUNT / 20);
    expect(refused).toBeGreaterThan(MUTATION_COUNT / 2);
  });
});
