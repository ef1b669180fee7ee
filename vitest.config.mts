import path from "node:path";
import { defineConfig } from "vitest/config";

export default defineConfig({
  // server-only throws outside a React Server Components build; tests call the API's route handlers directly.
  resolve: { alias: { "@": path.resolve(import.meta.dirname), "server-only": path.resolve(import.meta.dirname, "node_modules/server-only/empty.js") } },
  test: {
    environment: "node",
    include: ["lib/**/*.test.ts", "cli/**/*.test.ts", "worker/**/*.test.ts", "tests/**/*.test.ts", "*.test.ts"],
    exclude: ["node_modules", ".next", "e2e"],
    testTimeout: 30_000,
    hookTimeout: 60_000,
    pool: "forks",
    server: { deps: { inline: ["server-only", "next-auth"] } },
  },
});
