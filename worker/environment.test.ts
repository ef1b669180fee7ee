import { spawnSync } from "node:child_process";
import fs from "node:fs";
import { describe, expect, it } from "vitest";
import { WORKER_MALLOC_TUNABLE, workerEnvironment } from "./environment";

describe("workerEnvironment", () => {
  it("adds glibc's malloc cache size to GLIBC_TUNABLES, after the operator's own tunables", () => {
    expect(workerEnvironment({ PATH: "/usr/bin" })).toEqual({ PATH: "/usr/bin", GLIBC_TUNABLES: WORKER_MALLOC_TUNABLE });
    expect(workerEnvironment({ GLIBC_TUNABLES: "glibc.malloc.arena_max=2" }).GLIBC_TUNABLES).toBe(`glibc.malloc.arena_max=2:${WORKER_MALLOC_TUNABLE}`);
  });

  it("leaves an operator's own tcache_count as it is", () => {
    const own = { GLIBC_TUNABLES: "glibc.malloc.arena_max=2:glibc.malloc.tcache_count=16" };
    expect(workerEnvironment(own)).toEqual(own);
    expect(workerEnvironment({ GLIBC_TUNABLES: "glibc.malloc.tcache_count=0" }).GLIBC_TUNABLES).toBe("glibc.malloc.tcache_count=0");
  });

  // glibc's dynamic loader prints the tunables as the process it starts would have them.
  const loader = ["/lib64/ld-linux-x86-64.so.2", "/lib/ld-linux-aarch64.so.1"].find((f) => fs.existsSync(f));
  it.skipIf(!loader)("is a value glibc takes: the worker's malloc keeps 256 freed chunks of each size per thread", () => {
    const listed = spawnSync(loader!, ["--list-tunables"], { env: workerEnvironment({ ...process.env, GLIBC_TUNABLES: undefined }), encoding: "utf8" });
    expect(listed.status).toBe(0);
    expect(listed.stdout).toMatch(/^glibc\.malloc\.tcache_count: 0x100 /m);
  });
});
