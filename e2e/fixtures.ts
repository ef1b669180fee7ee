import { test as base, expect, type Page } from "@playwright/test";
import { readState } from "./state";

export const ADMIN = { email: "admin@example.test", password: "correct horse battery" };
export const VIEWER = { email: "viewer@example.test", password: "viewer password 1" };

export const test = base.extend<{ state: ReturnType<typeof readState> }>({
  baseURL: async ({}, use) => use(readState().baseURL),
  state: async ({}, use) => use(readState()),
});
export { expect };

export class LoginPage {
  constructor(private readonly page: Page) {}
  async signIn(user: { email: string; password: string }, opts: { expectSuccess?: boolean } = {}) {
    await this.page.goto("/login");
    await this.page.getByLabel("Email").fill(user.email);
    await this.page.getByLabel("Password").fill(user.password);
    await this.page.getByRole("button", { name: "Sign in" }).click();
    if (opts.expectSuccess ?? true) await this.page.waitForURL((url) => !url.pathname.startsWith("/login"));
  }
}

export class NewCertificatePage {
  constructor(private readonly page: Page) {}
  async open() {
    await this.page.goto("/certificates/new");
  }
  async fill(values: { names: string; displayName?: string; keyType?: string; validityDays?: string }) {
    await this.page.getByLabel("Names").fill(values.names);
    if (values.displayName !== undefined) await this.page.getByLabel("Display name (optional)").fill(values.displayName);
    if (values.keyType) await this.page.getByLabel("Key type").selectOption(values.keyType);
    if (values.validityDays !== undefined) await this.page.getByLabel("Validity (days)").fill(values.validityDays);
  }
  async submit() {
    await this.page.getByRole("button", { name: "Create certificate" }).click();
  }
}

/**
 * Records, in the page, every text the status badge matching `selector` shows from now on (a
 * MutationObserver, so no step is missed between two polls): from when the badge first appears, and ""
 * if it goes away again. Also marks the page, so that notReloaded can tell a reload (which wipes both).
 */
export async function watchBadges(page: Page, selector = "[data-testid=status-badge]") {
  await page.evaluate((sel) => {
    const w = window as unknown as { __badges: string[]; __noReload: boolean };
    w.__noReload = true;
    w.__badges = [];
    const record = () => {
      const text = document.querySelector(sel)?.textContent ?? "";
      if ((w.__badges.length || text) && w.__badges.at(-1) !== text) w.__badges.push(text);
    };
    record();
    new MutationObserver(record).observe(document.body, { subtree: true, childList: true, characterData: true });
  }, selector);
}

/** The badge texts watchBadges recorded, oldest first. */
export const watchedBadges = (page: Page) => page.evaluate(() => (window as unknown as { __badges: string[] }).__badges);

/** Marks the page; a reload wipes the mark, which notReloaded then tells. */
export const markPage = (page: Page) => page.evaluate(() => void ((window as unknown as { __noReload: boolean }).__noReload = true));

/** Whether the page is still the one markPage or watchBadges marked (no reload since). */
export const notReloaded = (page: Page) => page.evaluate(() => (window as unknown as { __noReload?: boolean }).__noReload === true);
