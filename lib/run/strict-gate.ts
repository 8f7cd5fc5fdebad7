/**
 * The strict-mode gate. In strict mode a record the source itself could not
 * parse (wrong column count, bad quoting, invalid UTF-8) fails the run like
 * one validate refuses. The source parses ahead of validate, so the failure
 * waits in the gate until the records before the bad line went through
 * validate: the error then names the first bad line of the file, whichever
 * stage found it.
 */
import type { RejectSink } from '../connector.js';
import { DativoError } from '../errors.js';
import { locationOf } from '../records/location.js';
import { isPackedRecords } from '../records/packed.js';
import { whereText, type SourceGate } from '../stages/validate.js';

export interface StrictGate {
  /** The reject sink to hand the source: records there also arm the gate. */
  sourceRejects: RejectSink;
  /** The check validate asks before each chunk (its `gate` option). */
  gate: SourceGate;
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
  const gate: SourceGate = {
    check: (rec) => (strictFailure !== undefined && past(rec) ? strictFailure : undefined),
    atEnd: () => strictFailure,
  };
  return { sourceRejects, gate, failure: () => strictFailure };
}
