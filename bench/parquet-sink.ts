/**
 * Benchmark of the Parquet sink: rows/s, MB/s and peak RSS for N generated
 * rows, beside two baselines measured in the same run: generating the rows
 * alone, and generating + building Arrow batches (no Parquet). Each phase
 * runs in its own child process so its peak RSS is its own.
 *
 *   node --import tsx bench/parquet-sink.ts [--rows=1000000] [--compression=zstd] [--batch=10000]
 */
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { fileURLToPath } from 'node:url';
import { arrowSchema, buildRecordBatch } from '../lib/parquet/arrow.js';
import type { ParquetCompression } from '../lib/parquet/writer.js';
import { parquetSink } from '../lib/stages/parquet-sink.js';
import { LocalStorage } from '../lib/storage/local.js';
import type { AssetField, FieldType, Row } from '../lib/types.js';

const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k!, v ?? 'true'];
  }),
);
const ROWS = Number(args.rows ?? 1_000_000);
const BATCH = Number(args.batch ?? 10_000);
const COMPRESSION = (args.compression ?? 'zstd') as ParquetCompression;

const f = (name: string, type: FieldType, fieldId: number, required = false): AssetField => ({ name, type, typeName: type.kind, required, fieldId });

/** The lab's table (reference/parquet-lab.md §1) plus the two system columns. */
const FIELDS: AssetField[] = [
  f('id', { kind: 'long' }, 1, true),
  f('email', { kind: 'string' }, 2, true),
  f('name', { kind: 'string' }, 3),
  f('created', { kind: 'timestamp' }, 4),
  f('amount', { kind: 'double' }, 5),
  f('flag', { kind: 'boolean' }, 6),
  f('note', { kind: 'string' }, 7),
  f('count', { kind: 'int' }, 8),
  f('currency', { kind: 'string' }, 9),
  f('payload', { kind: 'json' }, 10),
  f('price', { kind: 'decimal', precision: 12, scale: 2 }, 11),
  f('_dativo_ingested_at', { kind: 'timestamp' }, 12, true),
  f('_dativo_run_id', { kind: 'string' }, 13, true),
];
const CONSTANTS = { _dativo_ingested_at: 1764201600000000n, _dativo_run_id: 'bench-run' };
const CURRENCIES = ['USD', 'EUR', 'GBP', 'JPY', 'CHF', 'SEK', 'NOK'];

/** Deterministic rows in canonical form, `BATCH` at a time. */
function* generate(rows: number): Generator<Row[]> {
  let a = 42;
  const rnd = (): number => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const names = Array.from({ length: 256 }, (_, i) => `Customer name ${i}`);
  for (let start = 0; start < rows; start += BATCH) {
    const out: Row[] = [];
    for (let i = start; i < Math.min(rows, start + BATCH); i++) {
      const cents = Math.floor(rnd() * 10_000_000);
      out.push({
        id: 1_000_000_000_000n + BigInt(i),
        email: `user${i}.${Math.floor(rnd() * 1e6)}@example.com`,
        name: names[i & 255],
        created: 1_700_000_000_000_000n + BigInt(i) * 1_000_003n,
        amount: Math.round(rnd() * 1e6) / 100,
        flag: rnd() < 0.5,
        note: rnd() < 0.3 ? null : `note ${Math.floor(rnd() * 1e9).toString(36)}`,
        count: Math.floor(rnd() * 2e9) - 1e9,
        currency: CURRENCIES[i % 7],
        payload: JSON.stringify({ i, tags: ['a', 'b', Math.floor(rnd() * 1000)], address: { street: `${Math.floor(rnd() * 999)} Main Street`, city: 'Springfield', zip: String(10000 + (i % 89999)) }, active: rnd() < 0.5, score: rnd() }),
        price: `${Math.floor(cents / 100)}.${String(cents % 100).padStart(2, '0')}`,
      });
    }
    yield out;
  }
}

interface PhaseResult {
  phase: string;
  rows: number;
  ms: number;
  /** User + system CPU of the phase: steadier than wall time on a shared machine. */
  cpuMs: number;
  bytes: number;
  files: number;
  maxRssMiB: number;
}

async function runPhase(phase: string): Promise<PhaseResult> {
  const t0 = performance.now();
  const c0 = process.cpuUsage();
  let bytes = 0;
  let files = 0;
  if (phase === 'generate') {
    await pipeline(Readable.from(generate(ROWS)), new Writable({ objectMode: true, write: (_c, _e, cb) => cb() }));
  } else if (phase === 'arrow') {
    const schema = arrowSchema(FIELDS);
    for (const batch of generate(ROWS)) bytes += buildRecordBatch(FIELDS, batch, CONSTANTS, schema).byteLength;
  } else {
    const dir = await mkdtemp(join(tmpdir(), 'dativo-bench-'));
    try {
      const sink = parquetSink({
        storage: new LocalStorage(dir),
        fields: FIELDS,
        constants: CONSTANTS,
        directory: 'bench/data/ingest_date=2025-11-27',
        filePrefix: 'part-bench',
        compression: COMPRESSION,
      });
      await pipeline(Readable.from(generate(ROWS)), sink);
      bytes = sink.files.reduce((n, x) => n + x.fileSizeBytes, 0);
      files = sink.files.length;
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  const ms = performance.now() - t0;
  const cpu = process.cpuUsage(c0);
  return { phase, rows: ROWS, ms, cpuMs: (cpu.user + cpu.system) / 1000, bytes, files, maxRssMiB: process.resourceUsage().maxRSS / 1024 };
}

async function main(): Promise<void> {
  if (args.phase !== undefined) {
    process.stdout.write(JSON.stringify(await runPhase(args.phase)) + '\n');
    return;
  }
  const self = fileURLToPath(import.meta.url);
  const results: PhaseResult[] = [];
  for (const phase of ['generate', 'arrow', 'sink']) {
    const r = spawnSync(process.execPath, [...process.execArgv, self, ...process.argv.slice(2), `--phase=${phase}`], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    if (r.status !== 0) throw new Error(`phase ${phase} failed (${r.status})`);
    results.push(JSON.parse(r.stdout.trim().split('\n').at(-1)!) as PhaseResult);
  }
  const gen = results[0]!;
  console.log(`parquet-sink bench: ${ROWS.toLocaleString('en')} rows, batches of ${BATCH}, ${COMPRESSION}, Node ${process.version}, ${cpus().length} CPUs (${cpus()[0]?.model ?? '?'}), ${new Date().toISOString()}`);
  console.log('phase                           |  wall s |  CPU s |     rows/s | MB/s out | out MB | files | peak RSS MiB');
  for (const r of results) {
    const label = { generate: 'generate rows (baseline)', arrow: 'generate + Arrow batches', sink: `generate + parquetSink (${COMPRESSION})` }[r.phase]!;
    const s = r.ms / 1000;
    const mb = r.bytes / 1e6;
    console.log(
      `${label.padEnd(31)} | ${s.toFixed(2).padStart(7)} | ${(r.cpuMs / 1000).toFixed(2).padStart(6)} | ${Math.round(r.rows / s).toLocaleString('en').padStart(10)} | ${(r.phase === 'sink' ? (mb / s).toFixed(1) : '-').padStart(8)} | ${(r.phase === 'sink' ? mb.toFixed(1) : r.phase === 'arrow' ? `(${mb.toFixed(0)} in)` : '-').padStart(6)} | ${String(r.files || '-').padStart(5)} | ${r.maxRssMiB.toFixed(0).padStart(12)}`,
    );
  }
  const sink = results[2]!;
  const arrow = results[1]!;
  const own = (a: PhaseResult, b: PhaseResult, k: 'ms' | 'cpuMs'): string => ((a[k] - b[k]) / 1000).toFixed(2);
  if (sink.ms <= gen.ms || arrow.ms <= gen.ms) console.log("sink's own cost, wall: not measurable in this run (the machine was busier during the baseline); see CPU");
  else console.log(
    `sink's own cost, wall: ${own(sink, gen, 'ms')} s (Arrow building ${own(arrow, gen, 'ms')} s, Parquet encoding + I/O ${own(sink, arrow, 'ms')} s); ${Math.round(ROWS / ((sink.ms - gen.ms) / 1000)).toLocaleString('en')} rows/s excluding generation`,
  );
  console.log(
    `sink's own cost, CPU:  ${own(sink, gen, 'cpuMs')} s (Arrow building ${own(arrow, gen, 'cpuMs')} s, Parquet encoding + I/O ${own(sink, arrow, 'cpuMs')} s); ${Math.round(ROWS / ((sink.cpuMs - gen.cpuMs) / 1000)).toLocaleString('en')} rows/CPU-s excluding generation`,
  );
}

await main();
