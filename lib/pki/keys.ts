export const KEY_TYPES = ["ecdsa-p256", "ecdsa-p384", "rsa-2048", "rsa-4096"] as const;
export type KeyType = (typeof KEY_TYPES)[number];

export const KEY_TYPE_LABELS: Record<KeyType, string> = {
  "ecdsa-p256": "ECDSA P-256",
  "ecdsa-p384": "ECDSA P-384",
  "rsa-2048": "RSA 2048",
  "rsa-4096": "RSA 4096",
};

const RSA_PUBLIC_EXPONENT_65537 = new Uint8Array([0x01, 0x00, 0x01]);

const KEY_GENERATION_PARAMS: Record<KeyType, EcKeyGenParams | RsaHashedKeyGenParams> = {
  "ecdsa-p256": { name: "ECDSA", namedCurve: "P-256" },
  "ecdsa-p384": { name: "ECDSA", namedCurve: "P-384" },
  "rsa-2048": { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: RSA_PUBLIC_EXPONENT_65537, hash: "SHA-256" },
  "rsa-4096": { name: "RSASSA-PKCS1-v1_5", modulusLength: 4096, publicExponent: RSA_PUBLIC_EXPONENT_65537, hash: "SHA-256" },
};

export function isKeyType(value: string): value is KeyType {
  return (KEY_TYPES as readonly string[]).includes(value);
}

export function isRsaKeyType(keyType: KeyType): boolean {
  return keyType.startsWith("rsa-");
}

export async function generateKeyPair(keyType: KeyType): Promise<CryptoKeyPair> {
  // Extractable, because the private key is exported once to be sealed and stored.
  return globalThis.crypto.subtle.generateKey(KEY_GENERATION_PARAMS[keyType], true, ["sign", "verify"]);
}

export function toPem(label: string, der: ArrayBuffer | Uint8Array): string {
  const base64 = Buffer.from(der instanceof Uint8Array ? der : new Uint8Array(der)).toString("base64");
  const lines = base64.match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}

export async function exportPrivateKeyPem(key: CryptoKey): Promise<string> {
  return toPem("PRIVATE KEY", await globalThis.crypto.subtle.exportKey("pkcs8", key));
}
