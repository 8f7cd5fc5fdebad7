/**
 * Micro-benchmark of the record coercer (no streams): 1M records of 10 mixed
 * columns, as text (CSV-like) and as typed driver values. The baseline,
 * measured in the same run, is an identity pass that builds the same output
 * object without converting anything.
 *
 * Run: node --import tsx bench/coerce.ts [rows]
 */
import { compileCoercer } from '../lib/records/coerce.js';
import type { AssetField, FieldType, Row } from '../lib/types.js';

const N = Number(process.argv[2] ?? 1_000_000);

const f = (name: string, type: FieldType, required = false): AssetField => ({ name, type, typeName: type.kind, required, fieldId: 0 });
const fields: AssetField[] = [
  f('id', { kind: 'long' }, true),
  f('name', { kind: 'string' }),
  f('amount', { kind: 'decimal', precision: 12, scale: 2 }),
  f('qty', { kind: 'int' }),
  f('price', { kind: 'double' }),
  f('active', { kind: 'boolean' }),
  f('created', { kind: 'date' }),
  f('updated_at', { kind: 'timestamp' }, true),
  f('meta', { kind: 'json' }),
  f('tag', { kind: 'string' }),
];

function textRow(i: number): Row {
  return {
    id: String(1_000_000_000 + i),
    name: `customer ${i}`,
    amount: `${i % 100000}.${String(i % 100).padStart(2, '0')}`,
    qty: String(i % 1000),
    price: `${(i % 997) / 4}`,
    active: i % 3 === 0 ? 'true' : 'false',
    created: `2024-0${(i % 9) + 1}-1${i % 10}`,
    updated_at: `2024-0${(i % 9) + 1}-1${i % 10}T12:${String(i % 60).padStart(2, '0')}:00.${String(i % 1000000).padStart(6, '0')}Z`,
    meta: `{"k":${i}}`,
    tag: i % 2 === 0 ? 'a' : '',
  };
}

function typedRow(i: number): Row {
  return {
    id: 1_000_000_000 + i,
    name: `customer ${i}`,
    amount: `${i % 100000}.${String(i % 100).padStart(2, '0')}`,
    qty: i % 1000,
    price: (i % 997) / 4,
    active: i % 3 === 0,
    created: new Date(Date.UTC(2024, i % 12, (i % 28) + 1)),
    updated_at: new Date(1_704_067_200_000 + i * 1000),
    meta: { k: i },
    tag: null,
  };
}

function identity(raw: Row): Row {
  const out: Row = {};
  for (const fl of fields) out[fl.name] = raw[fl.name] ?? null;
  return out;
}

function time(label: string, pool: Row[], total: number, fn: (r: Row) => unknown): number {
  let sink = 0;
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  for (let i = 0, j = 0; i < total; i++, j = j + 1 === pool.length ? 0 : j + 1) if (fn(pool[j]!) !== undefined) sink++;
  const c1 = process.cpuUsage(c0);
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  // CPU time (this process, all threads incl. GC) is the steadier figure on
  // a shared machine; wall time is printed too.
  const cpuMs = (c1.user + c1.system) / 1000;
  if (sink !== total) throw new Error('bench: unexpected result');
  const rate = Math.round((total / ms) * 1000);
  const cpuRate = Math.round((total / cpuMs) * 1000);
  console.log(
    `${label.padEnd(30)} wall ${ms.toFixed(0).padStart(5)} ms ${rate.toLocaleString('en-US').padStart(10)} rows/s | cpu ${cpuMs.toFixed(0).padStart(5)} ms ${cpuRate.toLocaleString('en-US').padStart(10)} rows/s`,
  );
  return cpuMs;
}

const coerce = compileCoercer(fields, { onUnknownField: () => undefined });
const check = (r: Row): unknown => {
  const res = coerce(r);
  if (!res.ok) throw new Error(`bench row rejected: ${JSON.stringify(res.errors)}`);
  return res.row;
};

console.log(`coerce micro-bench: ${N.toLocaleString('en-US')} rows x ${fields.length} columns, node ${process.version}, ${process.arch}`);
for (const [kind, make] of [
  ['text', textRow],
  ['typed', typedRow],
] as const) {
  const pool = Array.from({ length: Math.min(N, 50_000) }, (_, i) => make(i));
  // Warm-up so both passes run optimised code.
  time(`warm-up ${kind}`, pool, pool.length, identity);
  time(`warm-up ${kind}`, pool, pool.length, check);
  const base = time(`identity (baseline), ${kind}`, pool, N, identity);
  const ms = time(`compileCoercer, ${kind}`, pool, N, check);
  console.log(`${''.padEnd(30)} ${(ms / base).toFixed(1)}x baseline (cpu)`);
}
console.log(`peak RSS ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB`);
