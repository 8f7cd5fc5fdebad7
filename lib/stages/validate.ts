/**
 * The validate stage: raw records in, canonical rows out (object mode). A thin
 * adapter over the record coercer compiled once per asset
 * (lib/records/coerce.ts); rejected records go to the reject sink.
 */
import { Transform, type TransformCallback } from 'node:stream';
import type { RejectSink } from '../connector.js';
import { DativoError } from '../errors.js';
import type { Logger } from '../log.js';
import { compileAssetCoercer, type Coercer, type FieldError } from '../records/coerce.js';
import { locationOf } from '../records/location.js';
import type { Asset, Row } from '../types.js';

/** Options of {@link validate}. */
export interface ValidateOptions {
  /**
   * `strict`: the first invalid record fails the stream with
   * VALIDATION_FAILED (after writing it to the reject sink);
   * `warn`: invalid records are rejected and the stream goes on.
   */
  mode: 'strict' | 'warn';
  /** Where invalid records go. */
  rejects: RejectSink;
  /** For the once-per-column warning about undeclared columns; default none. */
  log?: Logger;
  /** Object name, for rejects' context and errors; default the asset's `object` or name. */
  object?: string;
  /** Object-mode high-water mark of each side; default 16 records. */
  highWaterMark?: number;
  /**
   * Asked before a record is rejected: false drops it silently, because an
   * earlier run already handled (rejected) it. The cursor tracker's
   * `acceptRejected`, so that rejected rows move the cursor too. Default:
   * every invalid record is rejected.
   */
  admitReject?: (raw: Row) => boolean;
}

/** The validate Transform, with its counters. */
export class ValidateStream extends Transform {
  /** Records received. */
  rowsIn = 0;
  /** Canonical rows emitted. */
  rowsOut = 0;
  /** Records refused. */
  rejected = 0;

  readonly #coerce: Coercer;
  readonly #mode: 'strict' | 'warn';
  readonly #rejects: RejectSink;
  readonly #object: string;
  readonly #admitReject: ((raw: Row) => boolean) | undefined;

  constructor(asset: Asset, opts: ValidateOptions) {
    const hwm = opts.highWaterMark ?? 16;
    super({ objectMode: true, readableHighWaterMark: hwm, writableHighWaterMark: hwm });
    this.#mode = opts.mode;
    this.#rejects = opts.rejects;
    this.#object = opts.object ?? asset.object ?? asset.name;
    this.#admitReject = opts.admitReject;
    const log = opts.log;
    const object = this.#object;
    this.#coerce = compileAssetCoercer(asset, {
      onUnknownField: (column) =>
        log?.warn(
          // A logger already bound to the object (runJob's) would print the key twice.
          { event_type: 'unknown_column', ...(log.bindings()['object'] === undefined ? { object } : {}), column },
          `column "${column}" is not in asset ${asset.name}: not written`,
        ),
    });
  }

  override _transform(raw: unknown, _enc: BufferEncoding, cb: TransformCallback): void {
    this.rowsIn++;
    let errors: FieldError[];
    try {
      if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
        errors = [{ field: '', code: 'type', message: `record is ${Array.isArray(raw) ? 'an array' : String(raw === null ? null : typeof raw)}, not an object` }];
      } else {
        const r = this.#coerce(raw as Row);
        if (r.ok) {
          this.rowsOut++;
          cb(null, r.row);
          return;
        }
        errors = r.errors;
        if (this.#admitReject !== undefined && !this.#admitReject(raw as Row)) {
          cb();
          return;
        }
      }
      this.#reject(raw, errors, cb);
    } catch (err) {
      cb(err as Error);
    }
  }

  #reject(raw: unknown, errors: FieldError[], cb: TransformCallback): void {
    const fields = [...new Set(errors.map((e) => e.field).filter((f) => f !== ''))];
    const code = errors[0]?.code ?? 'type';
    const reason = errors.map((e) => (e.field === '' ? e.message : `${e.field}: ${e.message}`)).join('; ');
    const location = locationOf(raw);
    this.rejected++;
    this.#rejects.reject({ code, reason, fields, record: raw, ...(location ? { location } : {}) });
    if (this.#mode === 'warn') {
      cb();
      return;
    }
    cb(
      new DativoError('VALIDATION_FAILED', `invalid record in strict mode${whereText(location)}: ${reason}`, {
        context: {
          ...(location ?? {}),
          object: this.#object,
          fields,
          rejectCode: code,
          errors,
          ...(location ? { location } : {}),
        },
      }),
    );
  }
}

/** ` at <file> line <n>` (or page, ...) for messages; '' without a location. */
export function whereText(location: Record<string, unknown> | undefined): string {
  if (!location) return '';
  const parts = Object.entries(location)
    .filter(([, v]) => typeof v === 'string' || typeof v === 'number')
    .map(([k, v]) => (k === 'file' ? String(v) : `${k} ${String(v)}`));
  return parts.length > 0 ? ` at ${parts.join(' ')}` : '';
}

/**
 * Validate and coerce raw records against `asset` (see compileCoercer for
 * the rules). Object mode: Row in, canonical Row out. The coercer and the
 * asset's constraints are compiled here, once, so an invalid constraint
 * throws CONFIG_INVALID before any record is read.
 */
export function validate(asset: Asset, opts: ValidateOptions): ValidateStream {
  return new ValidateStream(asset, opts);
}
