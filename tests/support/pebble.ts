import "reflect-metadata";
import { spawn, type ChildProcess } from "node:child_process";
import { Resolver } from "node:dns/promises";
import fs from "node:fs";
import http from "node:http";
import https from "node:https";
import os from "node:os";
import path from "node:path";
import * as x509 from "@peculiar/x509";
import { findFreePort } from "../../lib/net";
import { exportPrivateKeyPem, generateKeyPair } from "../../lib/pki/keys";

// A real pebble (and pebble-challtestsrv for DNS) for tests, e2e runs and benchmarks.

const PEBBLE_BIN = "/usr/bin/pebble";
const CHALLTESTSRV_BIN = "/usr/bin/pebble-challtestsrv";
const STARTUP_TIMEOUT_MS = 20_000;
const POLL_INTERVAL_MS = 50;
const LOG_TAIL_LINES = 30;
const START_ATTEMPTS = 3;
const MILLISECONDS_PER_DAY = 24 * 60 * 60 * 1000;

export type PebbleOptions = {
  /** Port pebble's VA dials for HTTP-01 (default: a free port). */
  httpPort?: number;
  /** Port pebble's VA dials for TLS-ALPN-01 (default: a free port). */
  tlsPort?: number;
  /** kid -> base64url HMAC key; when given, pebble refuses accounts without external account binding. */
  eab?: Record<string, string>;
  /**
   * Percentage of orders that reuse a valid authorization (pebble's own default is 50; here 0). Even at 0,
   * pebble 2.4 reuses one in a hundred (it makes a new authorization only when rand.Intn(100) > 0): a test
   * that needs a name validated again must order it with an account that has no valid authorization for it.
   */
  authzReusePercent?: number;
};

export type Pebble = {
  /** https://127.0.0.1:<port>/dir */
  directoryUrl: string;
  /**
   * PEM file of the throwaway CA that signed pebble's HTTPS certificate. One CA serves every pebble
   * in this process, because acme-client trusts through one process-wide agent.
   */
  caBundlePath: string;
  caBundlePem: string;
  /** Pebble's HTTPS certificate and key (localhost, 127.0.0.1, ::1), reusable by other loopback test servers. */
  serverCertificate: { certPem: string; keyPem: string };
  /** Ports pebble's VA dials for HTTP-01 and TLS-ALPN-01: run the challenge listeners there. */
  httpPort: number;
  tlsPort: number;
  /** pebble-challtestsrv's DNS port (it answers A 127.0.0.1 for every name). */
  dnsPort: number;
  /** pebble-challtestsrv's management API, http://127.0.0.1:<port> */
  challtestsrvUrl: string;
  /** pebble's management API, https://127.0.0.1:<port> */
  managementUrl: string;
  /** Pebble's issuing root and intermediate, regenerated at every start. */
  issuerPems(): Promise<{ root: string; intermediate: string }>;
  /** Adds a TXT value for host (a trailing dot is added when missing). */
  setTxt(host: string, value: string): Promise<void>;
  /** Removes every TXT value for host. */
  clearTxt(host: string): Promise<void>;
  /** Temporary directory holding the config, certificates and logs. */
  dir: string;
  stop(): Promise<void>;
};

export function pebbleAvailable(): boolean {
  return fs.existsSync(PEBBLE_BIN) && fs.existsSync(CHALLTESTSRV_BIN);
}

export async function startPebble(options: PebbleOptions = {}): Promise<Pebble> {
  if (!pebbleAvailable()) throw new Error(`pebble is not installed (${PEBBLE_BIN}, ${CHALLTESTSRV_BIN}): apt-get install pebble`);
  const tls = await throwawayTls();
  // Ports are found free and then handed to another process, so a parallel run can take one first.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnce(options, tls);
    } catch (error) {
      if (!(error instanceof PebbleStartError && error.portInUse && attempt < START_ATTEMPTS)) throw error;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Starting and stopping

type ThrowawayTls = { caPem: string; certPem: string; keyPem: string };

type Ports = { acme: number; management: number; http: number; tls: number; dns: number; challtestsrv: number };

class PebbleStartError extends Error {
  constructor(
    message: string,
    readonly portInUse: boolean,
  ) {
    super(message);
  }
}

async function startOnce(options: PebbleOptions, tls: ThrowawayTls): Promise<Pebble> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "portcullis-pebble-"));
  const ports = await pickPorts(options);
  const files = writeFiles(dir, tls, ports, options);
  const processes: LoggedProcess[] = [];
  const cleanup = () => {
    for (const logged of processes) logged.child.kill("SIGKILL");
    fs.rmSync(dir, { recursive: true, force: true });
  };
  liveInstances.add(cleanup);
  registerExitCleanup();

  const directoryUrl = `https://127.0.0.1:${ports.acme}/dir`;
  const challtestsrvUrl = `http://127.0.0.1:${ports.challtestsrv}`;
  try {
    processes.push(spawnLogged(dir, "challtestsrv", CHALLTESTSRV_BIN, challtestsrvArgs(ports)));
    await waitUntil(processes, "challtestsrv DNS", () => dnsAnswers(ports.dns));
    await waitUntil(processes, "challtestsrv management", () => answers(() => request(`${challtestsrvUrl}/`)));
    processes.push(spawnLogged(dir, "pebble", PEBBLE_BIN, ["-config", files.config, "-dnsserver", `127.0.0.1:${ports.dns}`, "-strict=false"], pebbleEnv(options)));
    await waitUntil(processes, "pebble directory", () => answers(() => request(directoryUrl, { ca: tls.caPem })));
  } catch (error) {
    const message = `${error instanceof Error ? error.message : String(error)}\n${logTails(processes)}`;
    cleanup();
    liveInstances.delete(cleanup);
    throw new PebbleStartError(message, /address already in use/i.test(message));
  }

  return buildHandle({ dir, tls, ports, files, directoryUrl, challtestsrvUrl, processes, cleanup });
}

function buildHandle(state: {
  dir: string;
  tls: ThrowawayTls;
  ports: Ports;
  files: { caBundle: string };
  directoryUrl: string;
  challtestsrvUrl: string;
  processes: LoggedProcess[];
  cleanup: () => void;
}): Pebble {
  const { tls, ports, challtestsrvUrl, processes, cleanup } = state;
  const managementUrl = `https://127.0.0.1:${ports.management}`;
  const fetchManagementPem = async (pathname: string) => {
    const response = await request(`${managementUrl}${pathname}`, { ca: tls.caPem });
    if (response.status !== 200) throw new Error(`pebble management ${pathname}: HTTP ${response.status} ${response.body}`);
    return response.body;
  };
  const postChalltestsrv = async (pathname: string, body: object) => {
    const response = await request(`${challtestsrvUrl}${pathname}`, { method: "POST", body: JSON.stringify(body) });
    if (response.status !== 200) throw new Error(`pebble-challtestsrv ${pathname}: HTTP ${response.status} ${response.body}`);
  };
  let stopped = false;

  return {
    directoryUrl: state.directoryUrl,
    caBundlePath: state.files.caBundle,
    caBundlePem: tls.caPem,
    serverCertificate: { certPem: tls.certPem, keyPem: tls.keyPem },
    httpPort: ports.http,
    tlsPort: ports.tls,
    dnsPort: ports.dns,
    challtestsrvUrl,
    managementUrl,
    dir: state.dir,
    issuerPems: async () => ({ root: await fetchManagementPem("/roots/0"), intermediate: await fetchManagementPem("/intermediates/0") }),
    setTxt: (host, value) => postChalltestsrv("/set-txt", { host: fqdn(host), value }),
    clearTxt: (host) => postChalltestsrv("/clear-txt", { host: fqdn(host) }),
    stop: async () => {
      if (stopped) return;
      stopped = true;
      await Promise.all(processes.map((logged) => terminate(logged.child)));
      cleanup();
      liveInstances.delete(cleanup);
    },
  };
}

async function pickPorts(options: PebbleOptions): Promise<Ports> {
  // findFreePort never hands the same port out twice in one process, so these cannot collide with each other.
  const acme = await findFreePort();
  const management = await findFreePort();
  const http = options.httpPort ?? (await findFreePort());
  const tls = options.tlsPort ?? (await findFreePort());
  const dns = await findFreePort();
  const challtestsrv = await findFreePort();
  return { acme, management, http, tls, dns, challtestsrv };
}

function writeFiles(dir: string, tls: ThrowawayTls, ports: Ports, options: PebbleOptions) {
  const files = {
    caBundle: path.join(dir, "ca.pem"),
    certificate: path.join(dir, "server.pem"),
    privateKey: path.join(dir, "server.key"),
    config: path.join(dir, "pebble-config.json"),
  };
  fs.writeFileSync(files.caBundle, tls.caPem);
  fs.writeFileSync(files.certificate, tls.certPem);
  fs.writeFileSync(files.privateKey, tls.keyPem, { mode: 0o600 });
  const eab = options.eab && Object.keys(options.eab).length > 0 ? options.eab : undefined;
  const config = {
    pebble: {
      listenAddress: `127.0.0.1:${ports.acme}`,
      managementListenAddress: `127.0.0.1:${ports.management}`,
      certificate: files.certificate,
      privateKey: files.privateKey,
      httpPort: ports.http,
      tlsPort: ports.tls,
      ocspResponderURL: "",
      externalAccountBindingRequired: eab !== undefined,
      ...(eab ? { externalAccountMACKeys: eab } : {}),
    },
  };
  fs.writeFileSync(files.config, JSON.stringify(config, null, 2));
  return files;
}

function challtestsrvArgs(ports: Ports): string[] {
  // An IPv6 default makes pebble dial ::1 only, and the empty listeners keep it off ports 5001-5003.
  return [
    ...["-defaultIPv4", "127.0.0.1", "-defaultIPv6", ""],
    ...["-dns01", `127.0.0.1:${ports.dns}`, "-management", `127.0.0.1:${ports.challtestsrv}`],
    ...["-http01", "", "-https01", "", "-tlsalpn01", ""],
  ];
}

function pebbleEnv(options: PebbleOptions): NodeJS.ProcessEnv {
  // Validation must be real: a PEBBLE_VA_ALWAYS_VALID inherited from a developer's shell is dropped.
  const { PEBBLE_VA_ALWAYS_VALID: _dropped, ...inherited } = process.env;
  return {
    ...inherited,
    PEBBLE_VA_NOSLEEP: "1",
    PEBBLE_WFE_NONCEREJECT: "0",
    PEBBLE_AUTHZREUSE: String(options.authzReusePercent ?? 0),
  };
}

function fqdn(host: string): string {
  return host.endsWith(".") ? host : `${host}.`;
}

// ---------------------------------------------------------------------------------------------
// Child processes

type LoggedProcess = { name: string; child: ChildProcess; logPath: string };

const liveInstances = new Set<() => void>();
let exitCleanupRegistered = false;

// Children outlive a test process that exits without stop(): kill them on the way out.
function registerExitCleanup(): void {
  if (exitCleanupRegistered) return;
  exitCleanupRegistered = true;
  process.once("exit", () => {
    for (const cleanup of liveInstances) cleanup();
  });
}

function spawnLogged(dir: string, name: string, bin: string, args: string[], env: NodeJS.ProcessEnv = process.env): LoggedProcess {
  const logPath = path.join(dir, `${name}.log`);
  const fd = fs.openSync(logPath, "a");
  try {
    const child = spawn(bin, args, { env, stdio: ["ignore", fd, fd] });
    child.on("error", (error) => fs.appendFileSync(logPath, `spawn error: ${error.message}\n`));
    // Output goes straight to a file, so an unref'd child holds nothing open in this process.
    child.unref();
    return { name, child, logPath };
  } finally {
    fs.closeSync(fd);
  }
}

function terminate(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill("SIGKILL"), 2_000);
    child.once("exit", () => {
      clearTimeout(force);
      resolve();
    });
    child.kill("SIGTERM");
  });
}

async function waitUntil(processes: LoggedProcess[], what: string, ready: () => Promise<boolean>): Promise<void> {
  const deadline = Date.now() + STARTUP_TIMEOUT_MS;
  for (;;) {
    const exited = processes.find((logged) => logged.child.exitCode !== null || logged.child.signalCode !== null);
    if (exited) throw new Error(`${exited.name} exited during startup (${exited.child.exitCode ?? exited.child.signalCode})`);
    if (await ready()) return;
    if (Date.now() > deadline) throw new Error(`${what} did not answer within ${STARTUP_TIMEOUT_MS} ms`);
    await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
  }
}

async function answers(send: () => Promise<unknown>): Promise<boolean> {
  try {
    await send();
    return true;
  } catch {
    return false;
  }
}

async function dnsAnswers(port: number): Promise<boolean> {
  const resolver = new Resolver({ timeout: 200, tries: 1 });
  resolver.setServers([`127.0.0.1:${port}`]);
  return answers(() => resolver.resolve4("ready.pebble.test"));
}

function logTails(processes: LoggedProcess[]): string {
  return processes
    .map((logged) => {
      const lines = fs.existsSync(logged.logPath) ? fs.readFileSync(logged.logPath, "utf8").trimEnd().split("\n") : [];
      return `--- ${logged.name} (${logged.logPath}), last ${LOG_TAIL_LINES} lines:\n${lines.slice(-LOG_TAIL_LINES).join("\n")}`;
    })
    .join("\n");
}

// ---------------------------------------------------------------------------------------------
// HTTP

type SimpleResponse = { status: number; body: string };

function request(url: string, options: { method?: string; body?: string; ca?: string } = {}): Promise<SimpleResponse> {
  const target = new URL(url);
  const transport = target.protocol === "https:" ? https : http;
  return new Promise((resolve, reject) => {
    const outgoing = transport.request(
      target,
      { method: options.method ?? "GET", ca: options.ca, agent: false, timeout: 5_000, headers: options.body ? { "content-type": "application/json" } : {} },
      (response) => {
        const chunks: Buffer[] = [];
        response.on("data", (chunk: Buffer) => chunks.push(chunk));
        response.on("end", () => resolve({ status: response.statusCode ?? 0, body: Buffer.concat(chunks).toString("utf8") }));
        response.on("error", reject);
      },
    );
    outgoing.on("timeout", () => outgoing.destroy(new Error(`timeout: ${url}`)));
    outgoing.on("error", reject);
    outgoing.end(options.body);
  });
}

// ---------------------------------------------------------------------------------------------
// Throwaway TLS for pebble's own HTTPS

const SIGNING_ALGORITHM = { name: "ECDSA", hash: "SHA-256" };

let sharedTls: Promise<ThrowawayTls> | undefined;

function throwawayTls(): Promise<ThrowawayTls> {
  sharedTls ??= createThrowawayTls();
  return sharedTls;
}

async function createThrowawayTls(): Promise<ThrowawayTls> {
  x509.cryptoProvider.set(globalThis.crypto);
  const notBefore = new Date(Date.now() - 60_000);
  const notAfter = new Date(Date.now() + 7 * MILLISECONDS_PER_DAY);
  const caKeys = await generateKeyPair("ecdsa-p256");
  const serverKeys = await generateKeyPair("ecdsa-p256");

  const ca = await x509.X509CertificateGenerator.createSelfSigned({
    name: "CN=Portcullis test CA for pebble",
    notBefore,
    notAfter,
    keys: caKeys,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(true, 0, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      await x509.SubjectKeyIdentifierExtension.create(caKeys.publicKey),
    ],
  });

  const server = await x509.X509CertificateGenerator.create({
    subject: "CN=localhost",
    issuer: ca.subject,
    notBefore,
    notAfter,
    publicKey: serverKeys.publicKey,
    signingKey: caKeys.privateKey,
    signingAlgorithm: SIGNING_ALGORITHM,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth], false),
      new x509.SubjectAlternativeNameExtension(
        [
          { type: "dns", value: "localhost" },
          { type: "ip", value: "127.0.0.1" },
          { type: "ip", value: "::1" },
        ],
        false,
      ),
      await x509.AuthorityKeyIdentifierExtension.create(caKeys.publicKey),
      await x509.SubjectKeyIdentifierExtension.create(serverKeys.publicKey),
    ],
  });

  return { caPem: pem(ca), certPem: pem(server), keyPem: await exportPrivateKeyPem(serverKeys.privateKey) };
}

function pem(certificate: x509.X509Certificate): string {
  return `${certificate.toString("pem").replace(/\r\n/g, "\n").trimEnd()}\n`;
}
