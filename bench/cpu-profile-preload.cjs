// Preloaded into Portcullis's processes by bench/acme.ts when BENCH_ACME_PROFILE=1 (node --require):
// the first SIGUSR2 starts a V8 CPU profile, the second writes it to BENCH_CPU_PROFILE_DIR. Node 20
// refuses --cpu-prof in NODE_OPTIONS, and a profile of only the measured part is easier to read anyway.
const fs = require("node:fs");
const inspector = require("node:inspector");
const path = require("node:path");

const dir = process.env.BENCH_CPU_PROFILE_DIR;
const role = process.argv.at(-1);
if (dir && (role === "worker" || role === "console")) {
  const session = new inspector.Session();
  session.connect();
  let running = false;
  let taken = 0;
  const stop = () => {
    if (!running) return;
    running = false;
    // An in-thread session answers synchronously, so this also works inside an exit handler.
    session.post("Profiler.stop", (err, result) => {
      if (err) return;
      fs.writeFileSync(path.join(dir, `${role}-${process.pid}-${++taken}.cpuprofile`), JSON.stringify(result.profile));
    });
  };
  process.on("SIGUSR2", () => {
    if (running) return stop();
    session.post("Profiler.enable", () => session.post("Profiler.start", () => (running = true)));
  });
  process.on("exit", stop);
}
