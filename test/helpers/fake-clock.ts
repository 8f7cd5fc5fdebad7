/**
 * A virtual clock for lib/retry.ts `Clock` users (the scheduler, the retry
 * loop): time moves only when a test says so, and timers fire in time order.
 */
import type { Clock } from '../../lib/retry.js';

interface Timer {
  at: number;
  seq: number;
  resolve(): void;
}

/** Let callbacks chained on a fired timer run (promise jobs, then a macrotask turn). */
export async function flush(turns = 3): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise((r) => setImmediate(r));
}

export class FakeClock implements Clock {
  private timers: Timer[] = [];
  private seq = 0;

  constructor(public t: number) {}

  now(): number {
    return this.t;
  }

  sleep(ms: number, signal?: AbortSignal): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      const timer: Timer = {
        at: this.t + Math.max(0, ms),
        seq: this.seq++,
        resolve: () => {
          signal?.removeEventListener('abort', onAbort);
          resolve();
        },
      };
      const onAbort = (): void => {
        this.timers = this.timers.filter((x) => x !== timer);
        reject(signal?.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.timers.push(timer);
    });
  }

  /** Times of the pending timers, soonest first. */
  pending(): number[] {
    return this.timers.map((x) => x.at).sort((a, b) => a - b);
  }

  /** The soonest pending timer. */
  nextAt(): number | undefined {
    return this.pending()[0];
  }

  /** Move to `target`, firing every timer due on the way at its own time, in order. */
  async advanceTo(target: number): Promise<void> {
    for (;;) {
      const due = this.timers.filter((x) => x.at <= target).sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (due === undefined) break;
      this.timers = this.timers.filter((x) => x !== due);
      this.t = Math.max(this.t, due.at);
      due.resolve();
      await flush();
    }
    this.t = Math.max(this.t, target);
    await flush();
  }

  /** Fire the soonest timer (and any due with it); returns its time. */
  async runNext(): Promise<number> {
    const at = this.nextAt();
    if (at === undefined) throw new Error('no pending timer');
    await this.advanceTo(at);
    return at;
  }

  /** Jump `ms` ahead and only then fire what is due, all late (a blocked loop, a suspended machine). */
  async jump(ms: number): Promise<void> {
    this.t += ms;
    const due = this.timers.filter((x) => x.at <= this.t).sort((a, b) => a.at - b.at || a.seq - b.seq);
    this.timers = this.timers.filter((x) => x.at > this.t);
    for (const x of due) x.resolve();
    await flush();
  }
}
