import crypto from "node:crypto";

// Self-signed ECDSA P-256 leaf certificates, built as DER by hand and signed with node:crypto: about
// 0.3 ms each, against about 6 ms through @peculiar/x509 (lib/pki/selfSigned), so that bench/edge.ts
// can make 10,000 distinct real certificates in a few seconds. Same profile as lib/pki/selfSigned:
// CN = first name, basicConstraints CA:FALSE (critical), keyUsage digitalSignature (critical),
// extKeyUsage serverAuth, subjectAltName dNSNames. For benchmarks only.

function length(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v >>= 8) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}
const tlv = (tag: number, ...parts: Buffer[]) => {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from([tag]), length(body.length), body]);
};
const seq = (...parts: Buffer[]) => tlv(0x30, ...parts);
const set = (...parts: Buffer[]) => tlv(0x31, ...parts);
function oid(dotted: string): Buffer {
  const [a, b, ...rest] = dotted.split(".").map(Number);
  const out = [40 * a + b];
  for (const n of rest) {
    const chunk = [n & 0x7f];
    for (let v = n >>> 7; v > 0; v >>>= 7) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}
const positiveInteger = (bytes: Buffer) => tlv(0x02, bytes[0] & 0x80 ? Buffer.concat([Buffer.from([0]), bytes]) : bytes);
const utcTime = (d: Date) => tlv(0x17, Buffer.from(`${d.toISOString().slice(2, 19).replace(/[-T:]/g, "")}Z`));
const name = (commonName: string) => seq(set(seq(oid("2.5.4.3"), tlv(0x0c, Buffer.from(commonName, "utf8")))));
const extension = (id: string, critical: boolean, value: Buffer) =>
  seq(oid(id), ...(critical ? [tlv(0x01, Buffer.from([0xff]))] : []), tlv(0x04, value));

const ECDSA_WITH_SHA256 = seq(oid("1.2.840.10045.4.3.2"));

export type FastCertificate = { certificatePem: string; privateKeyPem: string };

export function fastSelfSignedCertificate(dnsNames: string[], validityDays = 90, now = new Date()): FastCertificate {
  const { publicKey, privateKey } = crypto.generateKeyPairSync("ec", { namedCurve: "prime256v1" });
  const serial = crypto.randomBytes(16);
  serial[0] = serial[0] & 0x7f || 0x01;
  const tbs = seq(
    tlv(0xa0, positiveInteger(Buffer.from([2]))),
    positiveInteger(serial),
    ECDSA_WITH_SHA256,
    name(dnsNames[0].slice(0, 64)),
    seq(utcTime(new Date(now.getTime() - 60_000)), utcTime(new Date(now.getTime() + validityDays * 86_400_000))),
    name(dnsNames[0].slice(0, 64)),
    publicKey.export({ type: "spki", format: "der" }),
    tlv(
      0xa3,
      seq(
        extension("2.5.29.19", true, seq()),
        extension("2.5.29.15", true, tlv(0x03, Buffer.from([0x07, 0x80]))),
        extension("2.5.29.37", false, seq(oid("1.3.6.1.5.5.7.3.1"))),
        extension("2.5.29.17", false, seq(...dnsNames.map((n) => tlv(0x82, Buffer.from(n, "ascii"))))),
      ),
    ),
  );
  const signature = crypto.sign("sha256", tbs, privateKey);
  const der = seq(tbs, ECDSA_WITH_SHA256, tlv(0x03, Buffer.concat([Buffer.from([0]), signature])));
  const b64 = der.toString("base64").match(/.{1,64}/g)!.join("\n");
  return {
    certificatePem: `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`,
    privateKeyPem: privateKey.export({ type: "pkcs8", format: "pem" }) as string,
  };
}
