import type { Db } from "../db";
import { subscribeEvents } from "./feed";

/** How soon a pass follows a wake: several wakes close together make one pass. */
export const WAKE_DELAY_MS = 20;

/**
 * A background worker's schedule: one pass at a time, the next after `nextDelayMs()`, or at once
 * (WAKE_DELAY_MS) when an event is recorded or `wake()` is called. A wake during a pass runs another
 * pass right after it, so nothing recorded meanwhile waits for the poll.
 */
export class WakeableLoop {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private wakeAgain = false;
  private unsubscribe?: () => void;
  private isStopped = false;

  constructor(
    private readonly opts: {
      db: Db;
      pass: () => Promise<unknown>;
      /** The wait before the next pass when nothing wakes the loop (asked after each pass). */
      nextDelayMs: () => number | Promise<number>;
      onError: (err: unknown) => void;
      /** Whether the loop's timer lets the process exit (a helper in a process that other work keeps alive). */
      unref?: boolean;
    },
  ) {}

  get stopped() {
    return this.isStopped;
  }

  start() {
    this.unsubscribe = subscribeEvents(this.opts.db, () => this.wake());
    this.run();
  }

  /** Look again soon. */
  wake() {
    if (this.isStopped || !this.timer) {
      this.wakeAgain = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = this.schedule(WAKE_DELAY_MS);
  }

  private schedule(delayMs: number): NodeJS.Timeout {
    const timer = setTimeout(this.run, delayMs);
    if (this.opts.unref) timer.unref();
    return timer;
  }

  /** Stops scheduling; resolves when the pass in progress has finished. */
  async stop() {
    this.isStopped = true;
    this.unsubscribe?.();
    clearTimeout(this.timer);
    await this.running;
  }

  private readonly run = () => {
    if (this.isStopped) return;
    clearTimeout(this.timer);
    this.timer = undefined;
    this.wakeAgain = false;
    this.running = this.opts
      .pass()
      .then(
        () => {},
        (err: unknown) => this.opts.onError(err),
      )
      .then(async () => {
        if (this.isStopped) return;
        const delay = await this.opts.nextDelayMs();
        if (!this.isStopped) this.timer = this.schedule(this.wakeAgain ? WAKE_DELAY_MS : delay);
      })
      .finally(() => (this.running = undefined));
  };
}
