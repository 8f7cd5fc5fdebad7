/**
 * The track stage: canonical rows in, the rows not written before out; at the
 * end `result()` is the cursor state to save once the data is committed. A
 * thin adapter over {@link CursorTracker} (lib/records/cursor.ts).
 */
import { Transform, type TransformCallback } from 'node:stream';
import { CursorTracker, type CursorTrackerOptions } from '../records/cursor.js';
import type { CursorState, Row } from '../types.js';

/** Options of {@link track}: those of {@link CursorTracker}, plus the stream's buffer. */
export interface TrackOptions extends CursorTrackerOptions {
  /** Object-mode high-water mark of each side; default 16 rows. */
  highWaterMark?: number;
}

/** The track Transform, with its tracker's counters. */
export class TrackStream extends Transform {
  readonly tracker: CursorTracker;

  constructor(opts: TrackOptions) {
    const hwm = opts.highWaterMark ?? 16;
    super({ objectMode: true, readableHighWaterMark: hwm, writableHighWaterMark: hwm });
    this.tracker = new CursorTracker(opts);
  }

  /** Rows dropped as already written. */
  get dropped(): number {
    return this.tracker.dropped;
  }

  /** Rows passed with a null cursor. */
  get nullCursor(): number {
    return this.tracker.nullCursor;
  }

  /** Records validate refused that an earlier run already handled. */
  get droppedRejects(): number {
    return this.tracker.droppedRejects;
  }

  /** Rows passed. */
  get passed(): number {
    return this.tracker.passed;
  }

  /** The cursor state to save (see {@link CursorTracker.result}); meaningful once the stream has finished. */
  result(): CursorState | undefined {
    return this.tracker.result();
  }

  override _transform(row: Row, _enc: BufferEncoding, cb: TransformCallback): void {
    let keep: boolean;
    try {
      keep = this.tracker.accept(row);
    } catch (err) {
      cb(err as Error);
      return;
    }
    if (keep) cb(null, row);
    else cb();
  }
}

/**
 * Drop rows an earlier run already wrote and track the cursor of the rest.
 * Object mode, canonical Row in and out (put it after `validate()`).
 *
 * @throws DativoError CONFIG_INVALID when the cursor column's kind cannot be a
 *   cursor; STATE_CORRUPT when the saved cursor does not parse.
 */
export function track(opts: TrackOptions): TrackStream {
  return new TrackStream(opts);
}
