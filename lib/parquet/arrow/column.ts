/**
 * The shape every Arrow column builder shares: rows appended one by one
 * into growable typed buffers with a validity bitmap, finished into Arrow
 * `Data`. Each physical type family has its own subclass with its own
 * `append` (bytes.ts, fixed.ts, decimal.ts), so every call site of the
 * compiled appender sees one class.
 */
import { makeData, type Data, type DataType } from 'apache-arrow';
import { DativoError } from '../../errors.js';
import type { AssetField } from '../../types.js';
import type { ColumnStatsAcc } from './stats.js';

/**
 * Mark row `i` valid. A function of the bitmap, not a method: a base-class
 * method reading `this.validity` would see every builder class at one site
 * (megamorphic); here the load stays in each class's own `append`.
 */
export function setValid(validity: Uint8Array, i: number): void {
  const k = i >> 3;
  const bit = i & 7;
  validity[k] = bit === 0 ? 1 : validity[k]! | (1 << bit);
}

/** A finished column: its Arrow data and the bytes of its buffers. */
export interface BuiltColumn {
  data: Data;
  bytes: number;
}

export function badValue(field: AssetField, row: number, value: unknown, why = `expected a canonical ${field.type.kind} value`): DativoError {
  return new DativoError('INTERNAL', `column ${field.name}, row ${row}: ${why}, got ${typeof value}`, {
    context: { column: field.name, row, kind: field.type.kind, valueType: typeof value },
  });
}

/** Lower and upper bound of a signed 64-bit integer, hoisted (comparisons do not allocate). */
export const INT64_MIN = -(2n ** 63n);
export const INT64_MAX = 2n ** 63n - 1n;

/** Node's UTF-8 writer into a Buffer at an offset: no subarray per value, unlike TextEncoder.encodeInto. */
export interface Utf8Writable extends Uint8Array {
  utf8Write(text: string, offset: number, length?: number): number;
}

/**
 * One column being appended to, row by row, into growable typed buffers
 * (values, offsets, validity bits) with its statistics. `append` is called
 * from a per-schema compiled function, so each call site sees one class.
 */
export abstract class ColumnBuilder {
  /** Rows appended. */
  n = 0;
  nulls = 0;
  cap: number;
  /** Capacity to allocate after a build. */
  nextCap: number;
  validity: Uint8Array;
  /** Keep the buffers across builds (see RecordBatchBuilder's `reuseBuffers`). */
  reuse = false;

  constructor(
    readonly field: AssetField,
    readonly type: DataType,
    capacity: number,
  ) {
    this.cap = capacity;
    this.nextCap = capacity;
    this.validity = new Uint8Array((capacity + 7) >> 3);
  }

  abstract append(v: unknown): void;
  /** Arrow data of the rows appended so far; resets the column for the next batch. */
  abstract finish(acc: ColumnStatsAcc): BuiltColumn;
  /** Bytes of values held (not counting validity). */
  abstract get valueBytes(): number;
  /** Grow the value buffers to `cap` rows, or (negative) replace them with fresh ones of `-cap` rows and reset the statistics. */
  protected abstract growValues(cap: number): void;
  /** Reset statistics and positions after a build. */
  protected abstract clear(): void;

  /** Room for one more row (call before writing row `n`). */
  protected grow(): void {
    if (this.cap === 0) {
      // First row after a build: the built Data owns the old buffers, so start fresh ones.
      const cap = this.nextCap;
      this.validity = new Uint8Array((cap + 7) >> 3);
      this.growValues(-cap);
      this.cap = cap;
      return;
    }
    const cap = this.cap * 2;
    const validity = new Uint8Array((cap + 7) >> 3);
    validity.set(this.validity);
    this.validity = validity;
    this.growValues(cap);
    this.cap = cap;
  }

  /** Record a null at row `n` (or throw for a required column). */
  protected appendNull(v: unknown): void {
    const i = this.n;
    if (this.field.required) throw badValue(this.field, i, v, 'null in a required column');
    this.nulls++;
    // The first row of a byte writes the whole byte: reused buffers need no clearing pass.
    if ((i & 7) === 0) this.validity[i >> 3] = 0;
  }


  /** Common tail of `finish`: counts, the validity bitmap (omitted when no nulls), reset. */
  protected done(acc: ColumnStatsAcc, make: (nullBitmap: Uint8Array | undefined) => Data, bytes: number): BuiltColumn {
    const n = this.n;
    acc.valueCount = n;
    acc.nullCount = this.nulls;
    const validity = this.validity.subarray(0, (n + 7) >> 3);
    const data = make(this.nulls === 0 ? undefined : validity);
    const out = { data, bytes: bytes + validity.byteLength };
    this.n = 0;
    this.nulls = 0;
    if (!this.reuse) {
      // Capacity 0 makes the next append allocate fresh buffers (see grow).
      this.nextCap = this.cap;
      this.cap = 0;
    }
    this.clear();
    return out;
  }
}

/** Arrow type constructors share this `makeData` overload shape per kind. */
type MakeArgs = Parameters<typeof makeData>[0];
export const make = (args: Record<string, unknown>): Data => makeData(args as unknown as MakeArgs) as Data;
