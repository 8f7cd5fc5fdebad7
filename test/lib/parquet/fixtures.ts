/**
 * Test data with every column kind and its edge values, in canonical form.
 */
import type { AssetField, FieldType, Row } from '../../../lib/types.js';

export function field(name: string, type: FieldType, fieldId: number, required = false): AssetField {
  return { name, type, typeName: type.kind, required, fieldId };
}

const longText = 'x'.repeat(5000) + '😀' + 'y'.repeat(5000);

/** Edge values per column; row i takes `values[i % values.length]`. */
export const EDGE_VALUES: Record<string, unknown[]> = {
  id: [],
  big: [9007199254740993n, -9223372036854775808n, 9223372036854775807n, 0n, null, -1n],
  n: [2147483647, -2147483648, 0, null, -1, 42],
  f: [1.5, -0, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 3.4028234663852886e38, 1e-45, 0.1, null],
  dbl: [Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY, 0.1, -1e308, 5e-324, null, -0, 123456789.123456789],
  d38: [
    '99999999999999999999999999999.999999999',
    '-99999999999999999999999999999.999999999',
    '0.000000000',
    '-0.000000001',
    '123.456000000',
    null,
    '18446744073709551616.000000001',
  ],
  d12: ['-12.50', '0.00', '9999999999.99', '-9999999999.99', '0.01', null, '-0.01'],
  flag: [true, false, null],
  day: [0, -1, -719162, 2932896, 20419, null],
  ts: [0n, -1n, 1n, -62135596800000000n, 253402300799999999n, 1764201600123456n, -123456789n, null],
  s: ['plain', '', null, '😀🎉', '中文字符', 'e\u0301', 'nul\u0000inside', '\uff66', longText, 'Ünïcödé'],
  j: ['{"a":1,"b":[true,null]}', '[]', '"text"', 'null', null, '{"emoji":"😀"}'],
  bin: [new Uint8Array([0, 0, 0]), new Uint8Array(0), new Uint8Array([255, 0, 1]), null, new Uint8Array([0])],
};

/** The table: every kind, the two system columns last. */
export const ALL_FIELDS: AssetField[] = [
  field('id', { kind: 'long' }, 1, true),
  field('big', { kind: 'long' }, 2),
  field('n', { kind: 'int' }, 3),
  field('f', { kind: 'float' }, 4),
  field('dbl', { kind: 'double' }, 5),
  field('d38', { kind: 'decimal', precision: 38, scale: 9 }, 6),
  field('d12', { kind: 'decimal', precision: 12, scale: 2 }, 7),
  field('flag', { kind: 'boolean' }, 8),
  field('day', { kind: 'date' }, 9),
  field('ts', { kind: 'timestamp' }, 10),
  field('s', { kind: 'string' }, 11),
  field('j', { kind: 'json' }, 12),
  field('bin', { kind: 'binary' }, 13),
  field('_dativo_ingested_at', { kind: 'timestamp' }, 14, true),
  field('_dativo_run_id', { kind: 'string' }, 15, true),
];

export const CONSTANTS = { _dativo_ingested_at: 1764201600654321n, _dativo_run_id: 'run-2026-11-27T00:00:00Z-ab12' };

/** `count` rows cycling through the edge values; ids 1..count. */
export function edgeRows(count: number): Row[] {
  const rows: Row[] = [];
  for (let i = 0; i < count; i++) {
    const row: Row = { id: BigInt(i + 1) };
    for (const [name, values] of Object.entries(EDGE_VALUES)) {
      if (values.length > 0) row[name] = values[i % values.length];
    }
    rows.push(row);
  }
  return rows;
}

/** The value a reader must return for `row[name]` (Float32 rounding for floats, constants filled in). */
export function expectedValue(row: Row, name: string): unknown {
  if (Object.hasOwn(CONSTANTS, name)) return CONSTANTS[name as keyof typeof CONSTANTS];
  const v = row[name];
  if (name === 'f' && typeof v === 'number') return Math.fround(v);
  return v;
}

/** Deterministic PRNG (mulberry32). */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
