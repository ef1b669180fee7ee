// The environment the worker process starts with (`portcullis serve` spawns it with this; the Dockerfile sets the
// same for `portcullis worker` in a container).
//
// glibc's malloc keeps up to 7 freed chunks of each size per thread for reuse without a lock (its tcache). A TLS
// handshake makes about 90 allocations in OpenSSL and Node and frees them when the connection closes; with dozens
// of connections in flight, most of those chunks overflow the 7 and go back to the shared bins, where each later
// allocation has to search them. In a worker that has loaded thousands of certificates those bins are full of the
// loading's leftovers, and the edge did 5–10% fewer handshakes per CPU-second with 10,000 certificates than with one
// (bench/README.md). 256 per size keeps a busy edge's churn in the cache. It costs some memory: freed chunks held for
// reuse are not merged, and at 10,000 certificates the edge's RSS measured about 40 MiB more (of some 480).
export const WORKER_MALLOC_TUNABLE = "glibc.malloc.tcache_count=256";

/**
 * `base` with WORKER_MALLOC_TUNABLE added to GLIBC_TUNABLES, unless the operator's own GLIBC_TUNABLES already sets
 * tcache_count. Other C libraries (musl) ignore the variable.
 */
export function workerEnvironment<E extends Record<string, string | undefined>>(base: E): E & { GLIBC_TUNABLES: string } {
  const own = base.GLIBC_TUNABLES ?? "";
  if (/(^|:)glibc\.malloc\.tcache_count=/.test(own)) return { ...base, GLIBC_TUNABLES: own };
  return { ...base, GLIBC_TUNABLES: own ? `${own}:${WORKER_MALLOC_TUNABLE}` : WORKER_MALLOC_TUNABLE };
}
