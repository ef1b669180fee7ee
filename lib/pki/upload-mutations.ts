// Seeded mutations of a valid upload, shared by the validator's fuzz test and the upload path's.
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { UploadInput } from "./upload";

export type FuzzMaterial = { leafPem: string; intermediatePem: string; rootPem: string; keyPem: string };

const NON_ASCII = ["é", "ß", "😀", "\u0000", "\ufffd", "\u202e", "\u00a0", "\u2028", "\r", "\t"];
const BASE64_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const PEM_LABELS = ["CERTIFICATE", "PRIVATE KEY", "EC PRIVATE KEY", "RSA PRIVATE KEY", "ENCRYPTED PRIVATE KEY", "CERTIFICATE REQUEST", "X"];

export type Random = { next(): number; below(limit: number): number; pick<T>(items: readonly T[]): T };

// mulberry32: small, seedable and good enough to spread mutations evenly.
export function seededRandom(seed: number): Random {
  let state = seed;
  const next = () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const below = (limit: number) => Math.floor(next() * limit);
  return { next, below, pick: (items) => items[below(items.length)]! };
}

type Mutation = (text: string, random: Random) => string;

function spliceText(text: string, at: number, removeCount: number, insert = ""): string {
  return text.slice(0, at) + insert + text.slice(at + removeCount);
}

function randomBytesAsText(random: Random, length: number): string {
  return Array.from({ length }, () => String.fromCharCode(random.below(256))).join("");
}

const MUTATIONS: Record<string, Mutation> = {
  flipBit: (text, random) => {
    if (text === "") return text;
    const at = random.below(text.length);
    return spliceText(text, at, 1, String.fromCharCode(text.charCodeAt(at) ^ (1 << random.below(8))));
  },
  deleteBytes: (text, random) => spliceText(text, random.below(text.length + 1), 1 + random.below(40)),
  insertBytes: (text, random) => spliceText(text, random.below(text.length + 1), 0, randomBytesAsText(random, 1 + random.below(12))),
  duplicateSlice: (text, random) => {
    const start = random.below(text.length + 1);
    const slice = text.slice(start, start + 1 + random.below(400));
    return spliceText(text, random.below(text.length + 1), 0, slice);
  },
  truncate: (text, random) => text.slice(0, random.below(text.length + 1)),
  swapLines: (text, random) => {
    const lines = text.split("\n");
    const first = random.below(lines.length);
    const second = random.below(lines.length);
    [lines[first], lines[second]] = [lines[second]!, lines[first]!];
    return lines.join("\n");
  },
  changeBase64Character: (text, random) => {
    const lines = text.split("\n");
    const bodyLineIndexes = lines.flatMap((line, index) => (/^[A-Za-z0-9+/=]{8,}$/.test(line) ? [index] : []));
    if (bodyLineIndexes.length === 0) return text;
    const lineIndex = random.pick(bodyLineIndexes);
    const line = lines[lineIndex]!;
    lines[lineIndex] = spliceText(line, random.below(line.length), 1, random.pick([...BASE64_ALPHABET, "=", "-", "_", " "]));
    return lines.join("\n");
  },
  swapBeginAndEnd: (text, random) => {
    const markers = [...text.matchAll(/-----(BEGIN|END) /g)];
    if (markers.length === 0) return text;
    const marker = random.pick(markers);
    return spliceText(text, marker.index! + 5, marker[1]!.length, marker[1] === "BEGIN" ? "END" : "BEGIN");
  },
  changeLabel: (text, random) => {
    const markers = [...text.matchAll(/-----(?:BEGIN|END) ([A-Z ]+)-----/g)];
    if (markers.length === 0) return text;
    const marker = random.pick(markers);
    const labelStart = marker.index! + marker[0].indexOf(marker[1]!);
    return spliceText(text, labelStart, marker[1]!.length, random.pick(PEM_LABELS));
  },
  injectNonAscii: (text, random) => spliceText(text, random.below(text.length + 1), 0, random.pick(NON_ASCII)),
  hugeLine: (text, random) => {
    const length = 20_000 + random.below(600_000);
    const filler = random.pick(["A", "-", "=", "-----BEGIN ", "é", "0\u0082"]);
    return spliceText(text, random.below(text.length + 1), 0, `\n${filler.repeat(Math.ceil(length / filler.length))}\n`);
  },
  // Changes a careful parser must shrug off: the result should still be accepted.
  addNoiseOutsideBlocks: (text, random) =>
    random.pick([
      () => `subject=CN = something\nissuer=CN = else\n${text}`,
      () => text.replace(/\n/g, "\r\n"),
      () => `\n\n${text}\n\n   \n`,
      () => text.replace(/-----\n(?!-)/g, "-----\n\n"),
    ])(),
};

const MUTATION_NAMES = Object.keys(MUTATIONS);

function mutate(text: string, random: Random): string {
  let mutated = text;
  const rounds = 1 + random.below(3);
  for (let round = 0; round < rounds; round++) mutated = MUTATIONS[random.pick(MUTATION_NAMES)]!(mutated, random);
  return mutated;
}

export function mutatedUpload(random: Random, { leafPem, intermediatePem, rootPem, keyPem }: FuzzMaterial): UploadInput {
  const fields = {
    certificatePem: random.next() < 0.5 ? leafPem + intermediatePem + rootPem : leafPem,
    keyPem,
    chainPem: "",
  };
  if (fields.certificatePem === leafPem) fields.chainPem = random.next() < 0.5 ? intermediatePem : intermediatePem + rootPem;
  const roll = random.next();
  if (roll < 0.45) fields.certificatePem = mutate(fields.certificatePem, random);
  else if (roll < 0.7) fields.keyPem = mutate(fields.keyPem, random);
  else if (roll < 0.85) fields.chainPem = mutate(fields.chainPem, random);
  else {
    // Blocks moved between fields, the way a hurried paste mixes them up.
    const combined = mutate(fields.certificatePem + fields.chainPem + fields.keyPem, random);
    const cut = random.below(combined.length + 1);
    fields.certificatePem = combined.slice(0, cut);
    fields.keyPem = combined.slice(cut);
    fields.chainPem = "";
  }
  const passphrase = random.next() < 0.1 ? mutate("passphrase", random) : undefined;
  return { kind: "pem", ...fields, passphrase };
}


/** A root → intermediate → leaf chain made by the openssl binary. */
export function createFuzzMaterial(): FuzzMaterial {
  const directory = mkdtempSync(path.join(tmpdir(), "portcullis-upload-fuzz-"));
  try {
    const openssl = (...args: string[]) => execFileSync("openssl", args, { cwd: directory, stdio: ["ignore", "pipe", "pipe"] });
    const issue = (name: string, commonName: string, issuer: string | undefined, ca: boolean) => {
      openssl("genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256", "-out", `${name}.key`);
      openssl("req", "-new", "-key", `${name}.key`, "-subj", `/CN=${commonName}`, "-out", `${name}.csr`);
      const extensions = ca
        ? "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n"
        : `basicConstraints=critical,CA:FALSE\nsubjectAltName=DNS:${commonName}\n`;
      writeFileSync(path.join(directory, `${name}.ext`), extensions);
      const signer = issuer ? ["-CA", `${issuer}.pem`, "-CAkey", `${issuer}.key`, "-CAcreateserial"] : ["-signkey", `${name}.key`];
      openssl("x509", "-req", "-in", `${name}.csr`, ...signer, "-days", "365", "-extfile", `${name}.ext`, "-out", `${name}.pem`);
    };
    issue("root", "Fuzz Root", undefined, true);
    issue("intermediate", "Fuzz Intermediate", "root", true);
    issue("leaf", "fuzz.example.test", "intermediate", false);
    const read = (name: string) => readFileSync(path.join(directory, name), "utf8");
    return { rootPem: read("root.pem"), intermediatePem: read("intermediate.pem"), leafPem: read("leaf.pem"), keyPem: read("leaf.key") };
  } finally {
    rmSync(directory, { recursive: true, force: true });
  }
}
