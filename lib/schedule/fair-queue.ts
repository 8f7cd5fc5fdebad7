/**
 * The run queue of the in-process scheduler: one FIFO per tenant, served
 * round-robin, under a per-tenant cap and a global cap. A tenant with a
 * thousand queued runs takes one turn like any other, so it never delays
 * another tenant's next run by more than one run per cap slot.
 * A plain class: the scheduler feeds it and starts what it hands out.
 */

/** Something queued for a tenant. */
export interface Queued {
  readonly tenant: string;
}

export class FairQueue<T extends Queued> {
  private readonly queues = new Map<string, T[]>();
  /** Tenants in the order they are served; the next turn starts after `last`. */
  private readonly order: string[] = [];
  private last = -1;
  private readonly runningByTenant = new Map<string, number>();
  private runningTotal = 0;

  constructor(
    /** Runs of one tenant at a time (>= 1). */
    readonly perTenant: number,
    /** Runs at a time in all (>= 1). */
    readonly total: number,
  ) {}

  push(item: T): void {
    let q = this.queues.get(item.tenant);
    if (q === undefined) {
      q = [];
      this.queues.set(item.tenant, q);
      this.order.push(item.tenant);
    }
    q.push(item);
  }

  /** Queued items (not running). */
  get size(): number {
    let n = 0;
    for (const q of this.queues.values()) n += q.length;
    return n;
  }

  get running(): number {
    return this.runningTotal;
  }

  runningOf(tenant: string): number {
    return this.runningByTenant.get(tenant) ?? 0;
  }

  /**
   * The next item allowed to start, marked running (call {@link done} when
   * it ends), or undefined when the caps are full or nothing may start.
   */
  take(): T | undefined {
    if (this.runningTotal >= this.total || this.order.length === 0) return undefined;
    for (let step = 1; step <= this.order.length; step++) {
      const i = (this.last + step) % this.order.length;
      const tenant = this.order[i]!;
      const q = this.queues.get(tenant);
      if (q === undefined || q.length === 0 || this.runningOf(tenant) >= this.perTenant) continue;
      this.last = i;
      this.runningByTenant.set(tenant, this.runningOf(tenant) + 1);
      this.runningTotal++;
      return q.shift();
    }
    return undefined;
  }

  /** Every item that may start now, in turn order. */
  takeAll(): T[] {
    const out: T[] = [];
    for (let item = this.take(); item !== undefined; item = this.take()) out.push(item);
    return out;
  }

  /** A taken item ended. */
  done(item: T): void {
    const n = this.runningOf(item.tenant);
    if (n <= 0) return;
    this.runningByTenant.set(item.tenant, n - 1);
    this.runningTotal--;
  }

  /** Remove and return every queued item (shutdown). */
  drain(): T[] {
    const out: T[] = [];
    for (const q of this.queues.values()) out.push(...q.splice(0));
    return out;
  }

  /** Remove queued items matching `pred`; returns them. */
  remove(pred: (item: T) => boolean): T[] {
    const out: T[] = [];
    for (const q of this.queues.values()) {
      for (let i = q.length - 1; i >= 0; i--) if (pred(q[i]!)) out.unshift(...q.splice(i, 1));
    }
    return out;
  }
}
