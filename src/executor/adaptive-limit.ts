/**
 * How many requests may be in flight, adapted to the server: halved when it throttles
 * (503 SlowDown, 429), raised by one after a run of successes, never above the configured
 * concurrency. Additive increase, multiplicative decrease, as TCP does it.
 */
export class AdaptiveLimit {
  private limit: number;
  private active = 0;
  private successes = 0;
  private waiters: (() => void)[] = [];
  private lastDecrease = 0;

  constructor(private readonly max: number) {
    this.limit = max;
  }

  get current(): number {
    return this.limit;
  }

  async acquire(): Promise<void> {
    while (this.active >= this.limit) await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.active++;
  }

  release(): void {
    this.active--;
    this.waiters.shift()?.();
  }

  onSuccess(): void {
    if (this.limit >= this.max) return;
    if (++this.successes >= this.limit) {
      this.successes = 0;
      this.limit++;
      this.waiters.shift()?.();
    }
  }

  /** Halves the limit, at most once per 500 ms so one burst of 503s is one decrease. */
  onThrottle(now = Date.now()): void {
    if (now - this.lastDecrease < 500) return;
    this.lastDecrease = now;
    this.successes = 0;
    this.limit = Math.max(1, Math.floor(this.limit / 2));
  }
}
