import type { Config } from "./config";

export type ServiceWarning = { id: string; message: string; href: string; linkText: string };

const LOOPBACK = /^(127\.|::1$|localhost$)/;

/**
 * What the console and listeners serve that an operator should fix: feeds the banner on every
 * page. Listener fallbacks and the console's local-CA certificate join this list with their issues.
 */
export function serviceWarnings(config: Config): ServiceWarning[] {
  const warnings: ServiceWarning[] = [];
  const plainHttp = config.tls.mode === "off" || (config.tls.mode === "auto" && LOOPBACK.test(config.host));
  if (plainHttp && !LOOPBACK.test(config.host)) {
    warnings.push({
      id: "console-plain-http",
      message: `The console is served over plain HTTP on ${config.host}: passwords and sessions cross the network unencrypted.`,
      href: "/settings",
      linkText: "Review TLS settings",
    });
  }
  return warnings;
}
