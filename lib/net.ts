import fs from "node:fs";
import net from "node:net";

// Ports handed out below the kernel's ephemeral range (ip_local_port_range, 32768-60999 by default): a
// port the kernel picks for listen(0) is from that range, and between the moment it is found free and the
// moment another process binds it, any outgoing connection on the machine (a database pool, a CA's
// validation) can take it as its local port. connect() never takes a port outside that range.
const PICK_FLOOR = 20_000;
const PICK_ATTEMPTS = 200;
// Each process picks from its own slice of that range (a vitest worker by its pool id, others by pid), and
// never hands out a port twice: two pickers rarely meet on a port that one of them has yet to bind.
const SLICES = 8;
const handedOut = new Set<number>();

let floorOfEphemeral: number | undefined;

/** The lowest port of the kernel's ephemeral range, read once. */
function ephemeralFloor(): number {
  if (floorOfEphemeral === undefined) {
    let low = NaN;
    try {
      low = Number(fs.readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    } catch {
      // Not Linux, or no /proc: the kernel's usual default below.
    }
    floorOfEphemeral = Number.isInteger(low) && low > 0 ? low : 32_768;
  }
  return floorOfEphemeral;
}

function tryListen(port: number): Promise<number | null> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once("error", () => resolve(null));
    server.listen({ port, host: "127.0.0.1", exclusive: true }, () => {
      const { port: bound } = server.address() as net.AddressInfo;
      server.close(() => resolve(bound));
    });
  });
}

/**
 * A TCP port that is free on loopback right now (for tests and benchmarks), for another process or a later
 * listen to take: from below the ephemeral range, so that no outgoing connection takes it in between.
 */
export async function findFreePort(): Promise<number> {
  const ceiling = ephemeralFloor();
  const sliceSize = Math.floor((ceiling - PICK_FLOOR) / SLICES);
  if (sliceSize >= 500) {
    const slice = Number(process.env.VITEST_POOL_ID ?? process.pid) % SLICES;
    for (let attempt = 0; attempt < PICK_ATTEMPTS; attempt++) {
      const candidate = PICK_FLOOR + slice * sliceSize + Math.floor(Math.random() * sliceSize);
      if (handedOut.has(candidate)) continue;
      // Taken before the probe, so that calls running at the same time never both get it.
      handedOut.add(candidate);
      if ((await tryListen(candidate)) !== null) return candidate;
    }
  }
  const port = await tryListen(0);
  if (port === null) throw new Error("no free TCP port on 127.0.0.1");
  return port;
}

/**
 * Starts `server` on a port of the kernel's choosing on loopback and returns it: no gap between
 * finding a free port and taking it, in which a parallel test could take it first.
 */
export function listenOnLoopback(server: net.Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      server.off("error", reject);
      resolve((server.address() as net.AddressInfo).port);
    });
  });
}
