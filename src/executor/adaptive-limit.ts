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
  /** Counts decreases; a request carries the epoch it was sent in. */
  private epoch = 0;

  constructor(private readonly max: number) {
    this.limit = max;
  }

  get current(): number {
    return this.limit;
  }

  /** Waits for a free slot; returns the epoch to hand to onThrottle if this request is throttled. */
  async acquire(): Promise<number> {
    while (this.active >= this.limit) await new Promise<void>((resolve) => this.waiters.push(resolve));
    this.active++;
    return this.epoch;
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

  /**
   * Halves the limit, once per round of requests: a throttle of a request sent before the last
   * decrease reports the load that decrease already answered (TCP halves once per round trip).
   */
  onThrottle(sentInEpoch: number): void {
    if (sentInEpoch < this.epoch) return;
    this.epoch++;
    this.successes = 0;
    this.limit = Math.max(1, Math.floor(this.limit / 2));
  }
}
