/**
 * A wake-up many waiters share: `next()` resolves at the next wake; `signal()` wakes them
 * `coalesceMs` after the first signal of a burst (later signals in the burst join it), so a
 * burst of N signals is one wake-up, not N.
 */
export class Wakeup {
  private waiters: (() => void)[] = [];
  private timer: NodeJS.Timeout | null = null;

  constructor(private readonly coalesceMs: number) {}

  /** Resolves at the next wake-up, or never once `cancel` (for a waiter that stopped waiting) ran. */
  next(): { woken: Promise<void>; cancel: () => void } {
    let resolve!: () => void;
    const woken = new Promise<void>((r) => (resolve = r));
    this.waiters.push(resolve);
    return { woken, cancel: () => { this.waiters = this.waiters.filter((w) => w !== resolve); } };
  }

  signal(): void {
    if (this.timer || !this.waiters.length) return;
    this.timer = setTimeout(() => this.wake(), this.coalesceMs);
  }

  /** Wakes every waiter now. */
  wake(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    const w = this.waiters;
    this.waiters = [];
    for (const r of w) r();
  }
}
