/**
 * Column statistics for the Iceberg manifest, gathered while the Arrow
 * columns are built: the accumulator, merging across batches, and the
 * orders Parquet and Iceberg use (code points for text, bytes for binary).
 */
import type { AssetField, ColumnStats, FieldType } from '../../types.js';

/**
 * Order of strings by Unicode code point, which is UTF-8 byte order (what
 * Parquet and Iceberg use). JS `<` compares UTF-16 code units and puts
 * U+E000..U+FFFF above astral characters; this fixes that.
 */
export function compareCodePoints(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) {
      if (x >= 0xd800 && y >= 0xd800) {
        // Surrogates (astral code points) sort above the rest of the BMP.
        const fx = x >= 0xe000 ? x - 0x800 : x + 0x2000;
        const fy = y >= 0xe000 ? y - 0x800 : y + 0x2000;
        return fx - fy;
      }
      return x - y;
    }
  }
  return a.length - b.length;
}

/** Code units where UTF-16 order and code point order can disagree. */
export const HIGH_UNITS = /[\ud800-\uffff]/;

export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/** Running statistics of one column; merge across batches with {@link mergeColumnStats}. */
export interface ColumnStatsAcc {
  fieldId: number;
  kind: FieldType['kind'];
  /** Decimal scale (decimal columns only). */
  scale?: number;
  valueCount: number;
  nullCount: number;
  nanCount: number;
  min: unknown;
  max: unknown;
  /** Comparable form of min/max (unscaled bigint for decimals, the value otherwise). */
  minKey: unknown;
  maxKey: unknown;
}

export function newAcc(field: AssetField): ColumnStatsAcc {
  return {
    fieldId: field.fieldId,
    kind: field.type.kind,
    valueCount: 0,
    nullCount: 0,
    nanCount: 0,
    min: undefined,
    max: undefined,
    minKey: undefined,
    maxKey: undefined,
    ...(field.type.kind === 'decimal' ? { scale: field.type.scale } : {}),
  };
}

function compareKeys(kind: FieldType['kind'], a: unknown, b: unknown): number {
  switch (kind) {
    case 'string':
    case 'json':
      return compareCodePoints(a as string, b as string);
    case 'binary':
      return compareBytes(a as Uint8Array, b as Uint8Array);
    case 'boolean':
      return Number(a) - Number(b);
    default: {
      const x = a as number | bigint;
      const y = b as number | bigint;
      return x < y ? -1 : x > y ? 1 : 0;
    }
  }
}

/** Merge `from` into `into` (same column). */
export function mergeColumnStats(into: ColumnStatsAcc, from: ColumnStatsAcc): void {
  into.valueCount += from.valueCount;
  into.nullCount += from.nullCount;
  into.nanCount += from.nanCount;
  if (from.minKey !== undefined && (into.minKey === undefined || compareKeys(into.kind, from.minKey, into.minKey) < 0)) {
    into.minKey = from.minKey;
    into.min = from.min;
  }
  if (from.maxKey !== undefined && (into.maxKey === undefined || compareKeys(into.kind, from.maxKey, into.maxKey) > 0)) {
    into.maxKey = from.maxKey;
    into.max = from.max;
  }
}

/** Canonical text of an unscaled decimal: (-1250n, 2) → "-12.50". */
export function formatUnscaled(unscaled: bigint, scale: number): string {
  const neg = unscaled < 0n;
  const digits = (neg ? -unscaled : unscaled).toString().padStart(scale + 1, '0');
  const text = scale === 0 ? digits : `${digits.slice(0, -scale)}.${digits.slice(-scale)}`;
  return neg ? `-${text}` : text;
}

/** The public {@link ColumnStats} of an accumulator (decimal bounds in canonical text at the column scale). */
export function finishColumnStats(acc: ColumnStatsAcc): ColumnStats {
  const out: ColumnStats = { fieldId: acc.fieldId, valueCount: acc.valueCount, nullCount: acc.nullCount };
  if (acc.minKey !== undefined) {
    out.min = acc.scale === undefined ? acc.min : formatUnscaled(acc.minKey as bigint, acc.scale);
    out.max = acc.scale === undefined ? acc.max : formatUnscaled(acc.maxKey as bigint, acc.scale);
  }
  if (acc.kind === 'float' || acc.kind === 'double') out.nanCount = acc.nanCount;
  return out;
}

