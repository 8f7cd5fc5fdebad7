/**
 * The strict-mode gate. In strict mode a record the source itself could not
 * parse (wrong column count, bad quoting, invalid UTF-8) fails the run like
 * one validate refuses. The source parses ahead of validate, so the failure
 * waits in the gate until the records before the bad line went through
 * validate: the error then names the first bad line of the file, whichever
 * stage found it.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { RejectSink } from '../connector.js';
import { DativoError } from '../errors.js';
import { locationOf } from '../records/location.js';
import { isColumnarText } from '../records/columnar.js';
import { isPackedRecords } from '../records/packed.js';
import { failAfterPrevious, whereText } from '../stages/validate.js';

/**
 * Object-mode pass-through that fails on the first record (or at the end) for
 * which `check` returns an error. A packed batch (coerced in threads, so
 * validate may still be at work on the batches before it) is not failed on
 * here: the failure goes on to validate in its place ({@link failAfterPrevious}),
 * and what follows it is dropped.
 */
class PassThroughGate extends Transform {
  private handedOn = false;
  private sawPacked = false;

  constructor(
    private readonly check: (rec: unknown) => Error | undefined,
    private readonly atEnd: () => Error | undefined,
  ) {
    super({ objectMode: true, highWaterMark: 16 });
  }

  override _transform(rec: unknown, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.handedOn) {
      cb();
      return;
    }
    // Batches validate is still at work on when the gate sees what follows them.
    const packed = isPackedRecords(rec) || isColumnarText(rec);
    this.sawPacked ||= packed;
    const err = this.check(rec);
    if (err !== undefined && packed) {
      this.handedOn = true;
      cb(null, failAfterPrevious(err));
      return;
    }
    cb(err ?? null, rec);
  }

  override _flush(cb: TransformCallback): void {
    if (this.handedOn) {
      cb();
      return;
    }
    const err = this.atEnd();
    if (err !== undefined && this.sawPacked) {
      // Validate may still be at work on the last batches: it fails after them.
      this.push(failAfterPrevious(err));
      cb();
      return;
    }
    cb(err ?? null);
  }
}

export interface StrictGate {
  /** The reject sink to hand the source: records there also arm the gate. */
  sourceRejects: RejectSink;
  /** The Transform to put in front of validate. */
  gate: Transform;
  /** The failure the source reported, if any. */
  failure(): DativoError | undefined;
}

/** A strict gate in front of `rejects` for one object. */
export function strictGate(rejects: RejectSink, object: string): StrictGate {
  let strictFailure: DativoError | undefined;
  let strictAt: Record<string, unknown> | undefined;
  const sourceRejects: RejectSink = {
    reject(rej) {
      rejects.reject(rej);
      if (strictFailure) return;
      strictAt = rej.location;
      strictFailure = new DativoError('VALIDATION_FAILED', `invalid record in strict mode${whereText(rej.location)}: ${rej.reason}`, {
        context: { ...(rej.location ?? {}), object, rejectCode: rej.code, ...(rej.location ? { location: rej.location } : {}) },
      });
    },
    get count() {
      return rejects.count;
    },
  };
  // Records come in file order: one past the refused line (or the end) means everything before it was seen.
  // A packed batch is past it when its last record is: records before the
  // refused line in such a batch are not validated.
  const past = (rec: unknown): boolean => {
    const at = isPackedRecords(rec) ? { file: rec.file, line: rec.lines[rec.rows - 1] } : locationOf(rec);
    const line = Number(strictAt?.['line']);
    return at === undefined || strictAt === undefined || !Number.isFinite(line) || at['file'] !== strictAt['file'] || Number(at['line']) > line;
  };
  const gate = new PassThroughGate(
    (rec) => (strictFailure !== undefined && past(rec) ? strictFailure : undefined),
    () => strictFailure,
  );
  return { sourceRejects, gate, failure: () => strictFailure };
}
