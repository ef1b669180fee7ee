#!/usr/bin/env node
// The `portcullis` command: TypeScript sources run through tsx's loader, no separate compile step.
import { register } from "tsx/esm/api";

register();
await import("../cli/index.ts");
