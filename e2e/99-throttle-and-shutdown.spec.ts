import { execFileSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import path from "node:path";
import { WORKER_MALLOC_TUNABLE, workerEnvironment } from "../worker/environment";
import { expect, LoginPage, test, VIEWER } from "./fixtures";

// Last in the run: the throttle also pauses sign-in for this address (127.0.0.1), and the
// shutdown test stops the console.
test.describe.configure({ mode: "serial" });

test("five failed sign-ins within a minute pause sign-in for that account, with a clear message", async ({ page }) => {
  const login = new LoginPage(page);
  // Earlier specs failed one sign-in from this address, which also counts toward the address's five.
  let refusedAsWrong = 0;
  for (let i = 0; i < 6; i++) {
    await login.signIn({ email: "nobody-throttle@example.test", password: `guess ${i}` }, { expectSuccess: false });
    const message = page.getByTestId("form-message");
    await expect(message).toContainText(/do not match|Too many/);
    if ((await message.textContent())?.includes("Too many")) break;
    refusedAsWrong++;
  }
  expect(refusedAsWrong).toBeGreaterThanOrEqual(4);
  expect(refusedAsWrong).toBeLessThanOrEqual(5);
  await expect(page.getByTestId("form-message")).toContainText(/Too many failed sign-ins.*try again in 5 minutes/);
});

test("`portcullis serve` starts the worker with glibc's malloc cache setting (worker/environment.ts), and the console without", async ({ state }) => {
  const environ = (pid: string) => fs.readFileSync(`/proc/${pid}/environ`, "utf8").split("\0");
  const children = fs.readFileSync(`/proc/${state.pid}/task/${state.pid}/children`, "utf8").trim().split(/\s+/);
  const role = (pid: string) => fs.readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0").filter(Boolean).at(-1);
  const byRole = Object.fromEntries(children.map((pid) => [role(pid), pid]));
  expect(Object.keys(byRole).sort()).toEqual(["console", "worker"]);
  expect(environ(byRole.worker)).toContain(`GLIBC_TUNABLES=${workerEnvironment(process.env).GLIBC_TUNABLES}`);
  expect(workerEnvironment(process.env).GLIBC_TUNABLES).toContain(WORKER_MALLOC_TUNABLE);
  expect(environ(byRole.console).filter((v) => v.startsWith("GLIBC_TUNABLES="))).toEqual(process.env.GLIBC_TUNABLES ? [`GLIBC_TUNABLES=${process.env.GLIBC_TUNABLES}`] : []);
});

function reachable(url: string): Promise<boolean> {
  return new Promise((resolve) => {
    http.get(url, (res) => {
      res.resume();
      resolve(true);
    }).on("error", () => resolve(false));
  });
}

/** An open live-event stream; `ended` settles when the server ends it. */
function openEventStream(url: string, token: string): Promise<{ ended: Promise<string> }> {
  return new Promise((resolve, reject) => {
    http
      .get(url, { headers: { Authorization: `Bearer ${token}` } }, (res) => {
        let body = "";
        const ended = new Promise<string>((done) => {
          res.on("end", () => done(body));
          res.on("close", () => done(body));
        });
        res.on("data", (chunk) => {
          body += chunk;
          if (body.includes("event: ready")) resolve({ ended });
        });
      })
      .on("error", reject);
  });
}

test("Ctrl-C on `portcullis serve` stops the console and the worker, and exits cleanly", async ({ state }) => {
  expect(await reachable(`${state.baseURL}/api/v1/health`)).toBe(true);
  expect(await reachable(`http://127.0.0.1:${state.healthPort}/health`)).toBe(true);
  // A browser with the console open holds a live stream; it must not hold up the shutdown.
  const token = JSON.parse(
    execFileSync(process.execPath, [path.resolve("bin/portcullis.mjs"), "token", "create", "--user", VIEWER.email, "--name", "shutdown stream", "--json"], {
      env: { ...process.env, PORTCULLIS_DATA_DIR: state.dataDir, DATABASE_URL: "" },
    }).toString(),
  ).token as string;
  const stream = await openEventStream(`${state.baseURL}/api/v1/events/stream`, token);
  const stopped = Date.now();
  process.kill(state.pid, "SIGINT");
  await stream.ended;
  expect(Date.now() - stopped).toBeLessThan(3000);
  await expect.poll(() => reachable(`${state.baseURL}/api/v1/health`), { timeout: 15_000 }).toBe(false);
  await expect.poll(() => reachable(`http://127.0.0.1:${state.healthPort}/health`), { timeout: 15_000 }).toBe(false);
  await expect
    .poll(() => {
      try {
        process.kill(state.pid, 0);
        return "running";
      } catch {
        return "exited";
      }
    }, { timeout: 15_000 })
    .toBe("exited");
});
