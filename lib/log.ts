import pino, { type Logger } from "pino";

const holder = globalThis as unknown as { __portcullisLogger?: Logger };

// Secrets never reach the log: these paths are censored wherever they appear.
const REDACT = [
  "password",
  "*.password",
  "token",
  "*.token",
  "secret",
  "*.secret",
  "privateKey",
  "*.privateKey",
  "sealed_key",
  "*.sealed_key",
  "headers.authorization",
  "headers.cookie",
  "req.headers.authorization",
  "req.headers.cookie",
];

export function logger(name = "portcullis"): Logger {
  holder.__portcullisLogger ??= pino({
    name,
    level: process.env.PORTCULLIS_LOG_LEVEL || "info",
    redact: { paths: REDACT, censor: "[redacted]" },
  });
  return holder.__portcullisLogger;
}

export function setLoggerName(name: string) {
  holder.__portcullisLogger = pino({
    name,
    level: process.env.PORTCULLIS_LOG_LEVEL || "info",
    redact: { paths: REDACT, censor: "[redacted]" },
  });
  return holder.__portcullisLogger;
}
