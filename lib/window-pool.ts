/**
 * One object read as windows at once: the window pool of the API sources
 * (`source.parallel_windows`; Stripe's `created` windows, HubSpot's
 * modified-date windows). A window is a part of the object's cursor window
 * that the connector reads page by page; the pool reads the pages of up to
 * `concurrency` windows at once (every request still goes through the job's
 * one limiter, which spaces them to the budget), hands every page to one
 * consumer as it arrives, and splits a window when a reader is idle.
 *
 * Memory: one page in flight per window and at most `maxPages` pages read
 * and not yet taken by the consumer (default 2 × concurrency); a reader
 * waits for room.
 *
 * Failure: a window whose read failed with a retryable error (its retry
 * policy exhausted: a range the server keeps failing on, an outage) is
 * left where it was and the other windows go on to their end; any other
 * error (fatal: a revoked key, the read closed) stops the pool from
 * starting reads. Either way the reads in flight settle, every page read
 * is still handed on, and the page stream ends normally.
 * {@link WindowPool.failure} then holds the first error and the windows
 * left, each at its resume point (a failed read leaves its window where it
 * was), so the connector can commit what was read and save where to go on
 * (lib/connector.ts SourceStream.incomplete).
 *
 * Plain logic, no I/O of its own: the connector's {@link WindowSource}
 * reads a page, says whether the window is done, and splits one.
 */

/** What the pool needs from a connector. */
export interface WindowSource<W, P> {
  /**
   * Read the next page of `w`; `done` when `w` has no more. Advances `w`'s
   * resume point only when the page is read: a read that throws leaves `w`
   * where it was.
   */
  read(w: W): Promise<{ page: P; done: boolean }>;
  /**
   * Carve up to `parts` new windows off the unread rest of `w` (`w` keeps
   * its share); `[]` when it cannot (nothing read yet to size the parts by,
   * or too little left). Called only while no read of `w` is in flight.
   * Default: windows never split.
   */
  split?(w: W, parts: number): W[];
  /**
   * Like {@link split}, but while a read of `w` is in flight: carve parts
   * off the end of `w`'s unread rest that the page in flight cannot reach
   * (the connector drops what a page returns below `w`'s new end). The pool
   * calls it only when readers would idle after splitting every window not
   * in flight (the tail of a read, where the last windows would otherwise
   * be read one page after the other). Default: not split while reading.
   */
  splitReading?(w: W, parts: number): W[];
  /** The relative size of `w`'s unread rest: larger windows split first. Default 0. */
  weight?(w: W): number;
}

import { isDativoError } from './errors.js';

/** Options of a {@link WindowPool}. */
export interface WindowPoolOptions {
  /** Windows read at once (`source.parallel_windows`). */
  concurrency: number;
  /** Pages read and not yet taken by the consumer, at most. Default 2 × concurrency. */
  maxPages?: number;
  /** True when `error` stops every window, not only its own. Default: any error that is not a retryable DativoError. */
  stops?: (error: unknown) => boolean;
}

/** How a pool stopped on a failure. */
export interface PoolFailure<W> {
  error: unknown;
  /** The windows not finished, at their resume points (the failed one included). */
  pending: W[];
}

interface Entry<W> {
  w: W;
  reading: boolean;
  done: boolean;
  /** Its read failed: left where it was for the next run. */
  failed: boolean;
}

export class WindowPool<W, P> {
  readonly concurrency: number;
  readonly maxPages: number;
  private readonly entries: Entry<W>[] = [];
  private readonly buffer: { window: W; page: P }[] = [];
  private reading = 0;
  /** The first failure of a window; `stopped` when it stops every window. */
  private failed: { error: unknown } | undefined;
  private stopped = false;
  private closed = false;
  private readonly stops: (error: unknown) => boolean;
  private wakeConsumer: (() => void) | undefined;
  /** Pages handed on, windows split off, and times a free reader waited for the consumer (pages held at `maxPages`). */
  pagesRead = 0;
  splits = 0;
  heldFull = 0;
  /** Windows split off windows whose page was in flight (counted in `splits` too). */
  tailSplits = 0;

  constructor(
    private readonly source: WindowSource<W, P>,
    options: WindowPoolOptions,
  ) {
    this.concurrency = Math.max(1, Math.floor(options.concurrency));
    this.maxPages = Math.max(1, options.maxPages ?? 2 * this.concurrency);
    this.stops = options.stops ?? ((e) => !(isDativoError(e) && e.disposition === 'retryable'));
  }

  /** True once a failure stopped every window or the consumer stopped: readers should start no further attempt. */
  get stopping(): boolean {
    return this.stopped || this.closed;
  }

  /** The failure that stopped the pool, with the windows left; undefined while none. */
  get failure(): PoolFailure<W> | undefined {
    if (!this.failed) return undefined;
    return { error: this.failed.error, pending: this.entries.filter((e) => !e.done).map((e) => e.w) };
  }

  /** Add a window to read. */
  add(w: W): void {
    this.entries.push({ w, reading: false, done: false, failed: false });
    this.schedule();
  }

  /** Every page, as read; ends when every window is done, or (after a failure) when every page read is handed on. */
  async *pages(): AsyncGenerator<{ window: W; page: P }> {
    try {
      this.schedule();
      for (;;) {
        const item = this.buffer.shift();
        if (item) {
          yield item;
          this.schedule();
          continue;
        }
        if (this.reading === 0 && (this.stopped || this.entries.every((e) => e.done || e.failed))) return;
        await new Promise<void>((r) => (this.wakeConsumer = r));
      }
    } finally {
      this.closed = true;
    }
  }

  private wake(): void {
    const w = this.wakeConsumer;
    this.wakeConsumer = undefined;
    w?.();
  }

  private room(): boolean {
    return this.reading < this.concurrency && this.buffer.length + this.reading < this.maxPages;
  }

  /**
   * Split the largest of `candidates` (by the source's weight) with `split`
   * until `ready` holds a window for every idle reader; the windows split
   * off join the pool and `ready`. Returns how many there were.
   */
  private splitFor(candidates: readonly Entry<W>[], split: (w: W, parts: number) => W[], ready: Entry<W>[], idle: () => number): number {
    const weight = this.source.weight ?? (() => 0);
    let added = 0;
    for (const e of [...candidates].sort((x, y) => weight(y.w) - weight(x.w))) {
      const want = idle() - ready.length;
      if (want <= 0) break;
      for (const w of split(e.w, want)) {
        const n: Entry<W> = { w, reading: false, done: false, failed: false };
        this.entries.push(n);
        ready.push(n);
        added++;
      }
    }
    this.splits += added;
    return added;
  }

  /** Start reads while there are free readers and room; split windows when readers would idle. */
  private schedule(): void {
    if (this.stopping) return;
    if (!this.room()) {
      if (this.reading < this.concurrency) this.heldFull++;
      return;
    }
    const idle = (): number => Math.min(this.concurrency - this.reading, this.maxPages - this.buffer.length - this.reading);
    let ready = this.entries.filter((e) => !e.done && !e.reading && !e.failed);
    const split = this.source.split;
    if (split && ready.length < idle()) this.splitFor(ready, (w, k) => split.call(this.source, w, k), ready, idle);
    // The tail: readers still idle, so split the largest windows in flight.
    const splitReading = this.source.splitReading;
    if (splitReading && ready.length < idle()) {
      const reading = this.entries.filter((e) => e.reading && !e.done && !e.failed);
      this.tailSplits += this.splitFor(reading, (w, k) => splitReading.call(this.source, w, k), ready, idle);
    }
    // Windows already begun first: fewer half-read windows to resume after a failure.
    ready = ready.sort((x, y) => Number(this.begun.has(y)) - Number(this.begun.has(x)));
    for (const e of ready) {
      if (!this.room()) break;
      this.start(e);
    }
  }

  private readonly begun = new WeakSet<Entry<W>>();

  private start(e: Entry<W>): void {
    e.reading = true;
    this.begun.add(e);
    this.reading++;
    this.source.read(e.w).then(
      ({ page, done }) => {
        e.reading = false;
        this.reading--;
        if (done) e.done = true;
        if (!this.closed) {
          this.buffer.push({ window: e.w, page });
          this.pagesRead++;
        }
        this.prune();
        this.schedule();
        this.wake();
      },
      (error: unknown) => {
        e.reading = false;
        e.failed = true;
        this.reading--;
        this.failed ??= { error };
        if (this.stops(error)) this.stopped = true;
        this.schedule();
        this.wake();
      },
    );
  }

  /** Drop finished windows (they are never read or resumed again). */
  private prune(): void {
    for (let i = this.entries.length - 1; i >= 0; i--) if (this.entries[i]!.done) this.entries.splice(i, 1);
  }
}
