/**
 * The one harness every `npm run bench -- <scenario>` goes through: the
 * common options, the measured run (the compiled CLI as a user runs it, its
 * peak RSS and CPU seconds), the read-back check (DuckDB), the readable table
 * and the JSON line printed last.
 *
 * A scenario prepares its data and job, then calls {@link runCli} for each
 * run, {@link readBack} on the files it wrote, and {@link result} to shape
 * what is printed. Nothing here knows a source.
 */
import { spawn } from 'node:child_process';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, loadavg, totalmem } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** tsx's loader as a URL: children run in other folders, where a bare `tsx` would not resolve. */
export const TSX = import.meta.resolve('tsx');

/** Options every scenario takes (`npm run bench -- <scenario> --help`). */
export interface CommonOptions {
  /** Rows (or objects) to move; each scenario has its default. */
  rows?: number;
  /** Pipeline runs; the median is reported. Default 1. */
  repeat: number;
  /** target.batch_rows: rows per Arrow batch handed to the encoder (default 10,000). */
  batchRows?: number;
  /** target.row_group_rows (default 100,000). */
  rowGroupRows?: number;
  /** target.compression (default zstd). */
  compression?: string;
  /** target.workers: threads that coerce CSV records into Arrow columns (0 = on the main thread). */
  workers?: number;
  /** Where Parquet is encoded: `inline` (main thread) or `worker` (the default with 2+ cores). */
  encoder?: 'inline' | 'worker';
  /** Write a CPU profile of the first measured run into this folder. */
  cpuProfDir?: string;
  /** Skip the baseline. */
  skipBaseline: boolean;
  /** Run lib/cli/bin.ts under tsx instead of building and running dist/ (the quick test does). */
  fromSource: boolean;
  /** Where generated input files are kept between runs (default bench/out). */
  dataDir?: string;
  log: (s: string) => void;
}

/** The `target` keys the common options set. */
export function targetKeys(o: CommonOptions): Record<string, unknown> {
  return {
    ...(o.batchRows !== undefined ? { batch_rows: o.batchRows } : {}),
    ...(o.rowGroupRows !== undefined ? { row_group_rows: o.rowGroupRows } : {}),
    ...(o.compression !== undefined ? { compression: o.compression } : {}),
    ...(o.workers !== undefined ? { workers: o.workers } : {}),
  };
}

/** Environment of the measured process for the common options. */
function optionEnv(o: CommonOptions): Record<string, string> {
  return o.encoder !== undefined ? { DATIVO_PARQUET_ENCODER: o.encoder } : {};
}

interface Spawned {
  seconds: number;
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Run a command; keeps the last 1 MB of stdout (a JSON line) and 20 kB of stderr. */
export function spawnMeasured(cmd: string, args: string[], opts: { env?: Record<string, string>; cwd?: string } = {}): Promise<Spawned> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, stdio: ['ignore', 'pipe', 'pipe'], ...(opts.cwd ? { cwd: opts.cwd } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout = (stdout + d.toString()).slice(-1_000_000)));
    child.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-20_000)));
    child.on('error', reject);
    child.on('close', (code) => resolve({ seconds: (performance.now() - t0) / 1000, code, stdout, stderr }));
  });
}

let built = false;

/**
 * Build dist/ (once per process) so that the CLI measured is the code in this
 * checkout, and dist/bench/pipeline-child.js beside it (the `--breakdown`
 * stages: the same compiled modules as the CLI's, not tsx's).
 */
export async function build(o: CommonOptions): Promise<void> {
  if (built || o.fromSource) return;
  o.log('building dist/ (the CLI measured) ...');
  const tsc = path.join(ROOT, 'node_modules/typescript/bin/tsc');
  const r = await spawnMeasured(process.execPath, [tsc, '-p', path.join(ROOT, 'tsconfig.build.json')]);
  if (r.code !== 0) throw new Error(`build failed: ${r.stdout.slice(-2000)}${r.stderr.slice(-2000)}`);
  // Types stripped only (typecheck covers the file); its relative imports resolve into dist/.
  const child = ['--ignoreConfig', path.join(ROOT, 'bench/pipeline-child.ts'), '--outDir', path.join(ROOT, 'dist/bench'), '--rootDir', path.join(ROOT, 'bench'), '--target', 'es2022', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--noCheck', '--noResolve', '--skipLibCheck'];
  const c = await spawnMeasured(process.execPath, [tsc, ...child]);
  if (c.code !== 0) throw new Error(`building bench/pipeline-child.ts failed: ${c.stdout.slice(-2000)}${c.stderr.slice(-2000)}`);
  built = true;
}

/**
 * `node` arguments that run bench/pipeline-child.ts the way the CLI is run:
 * compiled from dist/ (built first), or under tsx with `fromSource`.
 */
export async function pipelineChild(o: CommonOptions): Promise<string[]> {
  await build(o);
  return o.fromSource ? ['--import', TSX, path.join(ROOT, 'bench/pipeline-child.ts')] : [path.join(ROOT, 'dist/bench/pipeline-child.js')];
}

/** One measured process: wall and CPU seconds, peak RSS (kernel VmHWM, all threads). */
export interface Measured {
  /** The job's own seconds (from its summary) for a CLI run; the measured work's for other children. */
  seconds: number;
  /** Process start to exit. */
  wall: number;
  /** User + system CPU of the whole process, all threads: steadier than wall time on a shared box. */
  cpu_seconds: number;
  peak_rss_mb: number;
}

/** What `dativo run --json` says about one run. */
export interface CliRun extends Measured {
  exit_code: number;
  rows_written: number;
  rows_rejected: number;
  /** Data files written (file:// URLs). */
  files: string[];
  error?: unknown;
}

/**
 * The measured run, as a user runs it: `node dist/lib/cli/bin.js run <job>
 * --json` (or lib/cli/bin.ts under tsx with `fromSource`), with
 * bench/peak-rss.cjs preloaded to record its peak RSS and CPU time.
 */
export async function runCli(o: CommonOptions, job: string, dir: string, opts: { cpuProfile?: boolean; env?: Record<string, string> } = {}): Promise<CliRun> {
  await build(o);
  const stats = path.join(dir, `cli-stats-${process.pid}-${Date.now()}.json`);
  const cli = o.fromSource ? ['--import', TSX, path.join(ROOT, 'lib/cli/bin.ts')] : [path.join(ROOT, 'dist/lib/cli/bin.js')];
  const prof = opts.cpuProfile && o.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`] : [];
  const args = ['--require', path.join(ROOT, 'bench/peak-rss.cjs'), ...prof, ...cli, 'run', job, '--json'];
  const r = await spawnMeasured(process.execPath, args, { cwd: dir, env: { ...optionEnv(o), ...opts.env, DATIVO_BENCH_STATS: stats } });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let summary: { exit_code: number; seconds: number; objects: { rows_written: number; rows_rejected?: number; files: string[] }[]; error?: unknown };
  let measured: { peak_rss_mb: number; cpu_seconds: number };
  try {
    summary = JSON.parse(last) as typeof summary;
    measured = JSON.parse(await readFile(stats, 'utf8')) as typeof measured;
  } catch {
    throw new Error(`dativo run printed no summary (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  }
  return {
    seconds: summary.seconds,
    wall: r.seconds,
    cpu_seconds: measured.cpu_seconds,
    peak_rss_mb: measured.peak_rss_mb,
    exit_code: summary.exit_code,
    rows_written: summary.objects.reduce((n, x) => n + x.rows_written, 0),
    rows_rejected: summary.objects.reduce((n, x) => n + (x.rows_rejected ?? 0), 0),
    files: summary.objects.flatMap((x) => x.files),
    ...(summary.error !== undefined ? { error: summary.error } : {}),
  };
}

/**
 * A bench child (a baseline, a breakdown stage) measured like the CLI: it
 * prints one JSON line whose `seconds` (and `cpu_seconds`, if given) are its
 * measured work's; peak RSS (and otherwise CPU) come from bench/peak-rss.cjs,
 * which also gives `process_cpu_seconds` (the whole process, start-up and
 * every thread included, like a CLI run's). The whole line is returned as `out`.
 */
export async function runChild(args: string[], opts: { cwd?: string; env?: Record<string, string> } = {}): Promise<Measured & { process_cpu_seconds: number; out: Record<string, unknown> }> {
  const stats = path.join(opts.cwd ?? ROOT, `child-stats-${process.pid}-${Date.now()}.json`);
  const r = await spawnMeasured(process.execPath, ['--require', path.join(ROOT, 'bench/peak-rss.cjs'), ...args], { ...opts, env: { ...opts.env, DATIVO_BENCH_STATS: stats } });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let out: Record<string, unknown>;
  let measured: { peak_rss_mb: number; cpu_seconds: number };
  try {
    out = JSON.parse(last) as Record<string, unknown>;
    measured = JSON.parse(await readFile(stats, 'utf8')) as typeof measured;
  } catch {
    throw new Error(`${args.join(' ')} printed no result (exit ${r.code}): ${r.stderr.slice(-2000)}`);
  }
  if (r.code !== 0) throw new Error(`${args.join(' ')} exited ${r.code}: ${r.stderr.slice(-2000)}`);
  // A child that times its own work (pipeline-child.ts) leaves start-up out of both figures.
  const seconds = typeof out['seconds'] === 'number' ? out['seconds'] : r.seconds;
  const cpu = typeof out['cpu_seconds'] === 'number' ? out['cpu_seconds'] : measured.cpu_seconds;
  return { seconds, wall: r.seconds, cpu_seconds: cpu, process_cpu_seconds: measured.cpu_seconds, peak_rss_mb: measured.peak_rss_mb, out };
}

/** Open an offline in-memory DuckDB, run `fn`, close it. */
export async function withDuckDb<T>(fn: (conn: Awaited<ReturnType<DuckDBInstance['connect']>>) => Promise<T>): Promise<T> {
  const instance = await DuckDBInstance.create(':memory:', { autoinstall_known_extensions: 'false', autoload_known_extensions: 'false' });
  const conn = await instance.connect();
  try {
    return await fn(conn);
  } finally {
    conn.closeSync();
    instance.closeSync();
  }
}

/** A Parquet file list as a DuckDB list literal (file:// URLs or paths). */
export function parquetList(files: string[]): string {
  return `[${files.map((f) => `'${(f.startsWith('file:') ? fileURLToPath(f) : f).replaceAll("'", "''")}'`).join(', ')}]`;
}

/**
 * Aggregates of the written files read back by DuckDB, each as text:
 * `exprs` maps a name to a SQL aggregate (e.g. `{rows: 'count(*)', sum_id: 'sum(id)'}`).
 */
export async function readBack(files: string[], exprs: Record<string, string>): Promise<Record<string, string>> {
  if (files.length === 0) return Object.fromEntries(Object.keys(exprs).map((k) => [k, k === 'rows' ? '0' : 'NULL']));
  return withDuckDb(async (conn) => {
    const select = Object.entries(exprs)
      .map(([k, e]) => `CAST(${e} AS VARCHAR) AS "${k}"`)
      .join(', ');
    const r = await conn.runAndReadAll(`SELECT ${select} FROM read_parquet(${parquetList(files)})`);
    const row = r.getRowObjectsJS()[0]!;
    return Object.fromEntries(Object.keys(exprs).map((k) => [k, String(row[k])]));
  });
}

/**
 * The differences between what was read back and what was expected, as
 * readable lines; empty when they agree. A fast wrong answer fails here.
 */
export function mismatches(got: Record<string, string>, want: Record<string, string>): string[] {
  return Object.keys(want)
    .filter((k) => got[k] !== want[k])
    .map((k) => `${k}: the files hold ${got[k]}, expected ${want[k]}`);
}

export const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor((s.length - 1) / 2)]!;
};

export function round(x: number, digits: number): number {
  const f = 10 ** digits;
  return Math.round(x * f) / f;
}

/** One line of the readable table. */
export interface RunRow {
  label: string;
  seconds: number;
  cpu_seconds: number | null;
  rows_per_s: number;
  rows_per_cpu_s: number | null;
  peak_rss_mb: number | null;
}

/** The JSON line every scenario prints last (`ratio = rows_per_s / baseline_rows_per_s`). */
export interface BenchResult {
  scenario: string;
  rows: number;
  seconds: number;
  rows_per_s: number;
  rows_per_cpu_s: number;
  mb_per_s: number;
  peak_rss_mb: number;
  baseline: string;
  baseline_rows_per_s: number | null;
  ratio: number | null;
  verified: boolean;
  cpu_seconds: number;
  baseline_seconds: number | null;
  baseline_cpu_seconds: number | null;
  /** Every run of the table, baseline and breakdown stages included. */
  runs: RunRow[];
  /** `--breakdown`: the whole run's CPU seconds ÷ the source-only stage's (same compiled code, whole processes). */
  cpu_over_source?: number;
  /** The options the scenario ran with (batch_rows, row_group_rows, …), null when the default. */
  options: Record<string, unknown>;
  /** 1-minute load average when the scenario started: other work on the box skews wall times. */
  load_average: number;
  /** Scenario-specific figures (requests, 429s, …). */
  extra?: Record<string, unknown>;
  /** What was checked, in words, for the table. */
  checked: string;
  /** Lines printed under the table (not in the JSON line). */
  notes?: string[];
}

export function rowOf(label: string, rows: number, m: { seconds: number; cpu_seconds: number | null; peak_rss_mb: number | null }): RunRow {
  return {
    label,
    seconds: round(m.seconds, 2),
    cpu_seconds: m.cpu_seconds === null ? null : round(m.cpu_seconds, 2),
    rows_per_s: Math.round(rows / m.seconds),
    rows_per_cpu_s: m.cpu_seconds === null ? null : Math.round(rows / m.cpu_seconds),
    peak_rss_mb: m.peak_rss_mb,
  };
}

/** The 1-minute load average now, for the result. */
export function loadNow(): number {
  return round(loadavg()[0] ?? 0, 2);
}

/**
 * Shape a scenario's result from its measured full runs (the median is
 * reported), its baseline, its other runs and the bytes it moved.
 */
export function result(input: {
  scenario: string;
  rows: number;
  fulls: Measured[];
  bytes: number;
  baseline: string;
  baselineRun: { seconds: number; cpu_seconds: number | null; peak_rss_mb: number | null; rows_per_s?: number } | null;
  other?: RunRow[];
  fullLabel?: string;
  options: CommonOptions;
  load: number;
  checked: string;
  extra?: Record<string, unknown>;
  notes?: string[];
}): BenchResult {
  const seconds = median(input.fulls.map((r) => r.seconds));
  const cpu = median(input.fulls.map((r) => r.cpu_seconds));
  const peak = Math.max(...input.fulls.map((r) => r.peak_rss_mb));
  const rowsPerS = Math.round(input.rows / seconds);
  const b = input.baselineRun;
  const baselineRowsPerS = b === null ? null : (b.rows_per_s ?? Math.round(input.rows / b.seconds));
  const runs: RunRow[] = [];
  if (b !== null) runs.push({ ...rowOf(`baseline: ${input.baseline}`, input.rows, b), rows_per_s: baselineRowsPerS! });
  runs.push(...(input.other ?? []));
  runs.push(rowOf(input.fullLabel ?? 'dativo run', input.rows, { seconds, cpu_seconds: cpu, peak_rss_mb: peak }));
  const overSource = cpuOverSource(input.other ?? [], { cpu_seconds: cpu });
  const o = input.options;
  return {
    scenario: input.scenario,
    rows: input.rows,
    seconds: round(seconds, 2),
    rows_per_s: rowsPerS,
    rows_per_cpu_s: Math.round(input.rows / cpu),
    mb_per_s: round(input.bytes / 1e6 / seconds, 1),
    peak_rss_mb: peak,
    baseline: input.baseline,
    baseline_rows_per_s: baselineRowsPerS,
    ratio: baselineRowsPerS === null ? null : round(rowsPerS / baselineRowsPerS, 2),
    verified: true,
    cpu_seconds: round(cpu, 2),
    baseline_seconds: b === null ? null : round(b.seconds, 2),
    baseline_cpu_seconds: b === null || b.cpu_seconds === null ? null : round(b.cpu_seconds, 2),
    runs,
    ...(overSource !== null ? { cpu_over_source: overSource } : {}),
    options: {
      repeat: o.repeat,
      batch_rows: o.batchRows ?? null,
      row_group_rows: o.rowGroupRows ?? null,
      compression: o.compression ?? null,
      workers: o.workers ?? null,
      encoder: o.encoder ?? null,
      cli: o.fromSource ? 'lib/cli/bin.ts (tsx)' : 'dist/lib/cli/bin.js',
    },
    load_average: input.load,
    ...(input.extra ? { extra: input.extra } : {}),
    checked: input.checked,
    ...(input.notes ? { notes: input.notes } : {}),
  };
}

/** `2 x Intel Xeon …, 24 GiB, node v20…`. */
export function machine(): string {
  return `${cpus().length} x ${cpus()[0]?.model.trim() ?? 'cpu'}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`;
}

const fmt = (n: number | null): string => (n === null ? '-' : n.toLocaleString('en-US'));

/** The readable table (stdout), before the JSON line. */
export function formatTable(r: BenchResult): string {
  const lines = [
    `scenario        ${r.scenario}`,
    `machine         ${machine()}, load average ${r.load_average} at start`,
    `rows            ${fmt(r.rows)} (verified: ${r.checked})`,
    '',
    `${'run'.padEnd(58)} ${'seconds'.padStart(8)} ${'CPU s'.padStart(7)} ${'rows/s'.padStart(11)} ${'rows/CPU s'.padStart(11)} ${'peak RSS MB'.padStart(12)}`,
  ];
  for (const x of r.runs) {
    lines.push(
      `${x.label.slice(0, 58).padEnd(58)} ${String(x.seconds).padStart(8)} ${fmt(x.cpu_seconds).padStart(7)} ${fmt(x.rows_per_s).padStart(11)} ${fmt(x.rows_per_cpu_s).padStart(11)} ${fmt(x.peak_rss_mb).padStart(12)}`,
    );
  }
  lines.push('', `MB/s ${r.mb_per_s}   ratio (rows/s ÷ baseline rows/s): ${r.ratio ?? '-'}`);
  if (r.cpu_over_source !== undefined) lines.push(`CPU s of the run ÷ CPU s of the source alone: ${r.cpu_over_source}`);
  for (const [k, v] of Object.entries(r.extra ?? {})) lines.push(`${k.padEnd(22)} ${typeof v === 'string' ? v : JSON.stringify(v)}`);
  if (r.notes) lines.push('', ...r.notes);
  return lines.join('\n') + '\n';
}

/** The JSON line: the issue's fields first, the rest after. */
export function jsonLine(r: BenchResult): string {
  const { scenario, rows, seconds, rows_per_s, rows_per_cpu_s, mb_per_s, peak_rss_mb, baseline, baseline_rows_per_s, ratio, verified, notes: _notes, ...rest } = r;
  return JSON.stringify({ scenario, rows, seconds, rows_per_s, rows_per_cpu_s, mb_per_s, peak_rss_mb, baseline, baseline_rows_per_s, ratio, verified, ...rest });
}

/** Write a job (JSON is YAML) and return its path. */
export async function writeJob(dir: string, job: Record<string, unknown>, name = 'job.yaml'): Promise<string> {
  const file = path.join(dir, name);
  await writeFile(file, JSON.stringify(job, null, 2));
  return file;
}

const STAGE_LABELS: Record<string, string> = {
  source: 'stages: source only (null sink)',
  validate: 'stages: source → validate',
  arrow: 'stages: … → Arrow buffers (no Parquet)',
};

/**
 * The cost of each stage (`--breakdown`): bench/pipeline-child.ts, compiled
 * like the CLI (see {@link pipelineChild}), runs the job's source alone, then
 * + validate, then + Arrow column buffers (everything but the Parquet
 * encoding and the commit). Each must move exactly `rows` rows. CPU is the
 * whole process's (start-up and all threads), as for the CLI run, so that
 * the rows compare with it.
 */
export async function breakdown(o: CommonOptions, job: string, rows: number): Promise<RunRow[]> {
  const out: RunRow[] = [];
  const child = await pipelineChild(o);
  for (const mode of ['source', 'validate', 'arrow']) {
    o.log(`stages (${mode}) ...`);
    const args = [...child, '--job', job, '--mode', mode, ...(o.batchRows ? ['--batch-rows', String(o.batchRows)] : [])];
    const r = await runChild(args, { cwd: path.dirname(job), env: optionEnv(o) });
    if (r.out['exit_code'] !== 0 || r.out['rows'] !== rows) {
      throw new Error(`${mode} run: ${String(r.out['rows'])} rows of ${rows}, exit ${String(r.out['exit_code'])}: ${JSON.stringify(r.out['error'] ?? r.out['first_reject'])}`);
    }
    out.push(rowOf(STAGE_LABELS[mode]!, rows, { ...r, cpu_seconds: r.process_cpu_seconds }));
  }
  return out;
}

/** The whole run's CPU seconds ÷ the source-only stage's (`--breakdown`), or null without it. */
export function cpuOverSource(stages: RunRow[], full: { cpu_seconds: number }): number | null {
  const source = stages.find((x) => x.label === STAGE_LABELS['source']);
  return source?.cpu_seconds ? round(full.cpu_seconds / source.cpu_seconds, 2) : null;
}

/**
 * The measured runs (`o.repeat` of them, the warehouse emptied before each,
 * the first profiled with `--cpu-prof`): each must exit 0 and its files must
 * read back as `want` (the aggregates `exprs`; `rows_written` and
 * `rows_rejected` of the summary are checked too when `want` has
 * `reported` / `rejected`). Throws on the first wrong answer.
 */
export async function measuredRuns(o: CommonOptions, job: string, dir: string, exprs: Record<string, string>, want: Record<string, string>): Promise<CliRun[]> {
  const fulls: CliRun[] = [];
  for (let i = 0; i < o.repeat; i++) {
    o.log(`dativo run (${i + 1}/${o.repeat}) ...`);
    await rm(path.join(path.dirname(job), 'warehouse'), { recursive: true, force: true });
    const r = await runCli(o, job, dir, { cpuProfile: i === 0 });
    if (r.exit_code !== 0) throw new Error(`dativo run failed (exit ${r.exit_code}): ${JSON.stringify(r.error)}`);
    const got = { ...(await readBack(r.files, exprs)), reported: String(r.rows_written), rejected: String(r.rows_rejected) };
    const wrong = mismatches(got, want);
    if (wrong.length > 0) throw new Error(`wrong output: ${wrong.join('; ')}`);
    fulls.push(r);
  }
  return fulls;
}
