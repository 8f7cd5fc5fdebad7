/**
 * Helpers for CLI end-to-end tests: a throw-away project folder (asset, job,
 * CSV files), the `dativo` binary spawned as a user runs it, and byte-exact
 * snapshots of what a run must not touch.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const repo = path.resolve(import.meta.dirname, '../../..');
export const bin = path.join(repo, 'lib/cli/bin.ts');

/** What a `dativo` process did. */
export interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Options of {@link dativo}. */
export interface DativoOptions {
  cwd: string;
  env?: Record<string, string | undefined>;
  /** Kill after this long (default 60 s). */
  timeoutMs?: number;
  /** SIGKILL the process as soon as its stderr contains this text (crash tests). */
  killOnStderr?: string;
}

/** The node command line that runs the CLI from source, as `npm start` does. */
export function dativoArgv(args: string[]): string[] {
  return ['--import', import.meta.resolve('tsx'), bin, ...args];
}

/** Spawn `dativo <args>` and collect its exit code and output. */
export function dativo(args: string[], opts: DativoOptions): Promise<Ran> {
  return spawnCollect(process.execPath, dativoArgv(args), opts);
}

/**
 * Run `dativo <args>` in a private mount namespace (`unshare -m`) after the
 * shell commands `setup` ran there (e.g. a read-only bind mount): the mounts
 * vanish with the process, nothing leaks into the machine. Needs root (or
 * CAP_SYS_ADMIN); see {@link canUnshareMounts}.
 */
export function dativoInMountNamespace(setup: string, args: string[], opts: DativoOptions): Promise<Ran> {
  return spawnCollect('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `${setup} && exec "$0" "$@"`, process.execPath, ...dativoArgv(args)], opts);
}

/** Whether this machine lets us make private mount namespaces and mounts in them. */
export async function canUnshareMounts(dir: string): Promise<boolean> {
  const r = await spawnCollect('unshare', ['-m', '--propagation', 'private', 'sh', '-c', `mount -t tmpfs -o size=64k tmpfs "${dir}"`], { cwd: dir }).catch(() => undefined);
  return r?.code === 0;
}

function spawnCollect(command: string, argv: string[], opts: DativoOptions): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const inherited: Record<string, string | undefined> = { ...process.env };
    // Tests must not inherit a developer's state/reject folders or pause point.
    delete inherited['DATIVO_STATE_DIR'];
    delete inherited['DATIVO_REJECT_DIR'];
    delete inherited['DATIVO_PAUSE_AT'];
    const env = { ...inherited, ...opts.env };
    const child = spawn(command, argv, { cwd: opts.cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (opts.killOnStderr !== undefined && stderr.includes(opts.killOnStderr)) child.kill('SIGKILL');
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs ?? 60_000);
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

/** A temp folder with helpers to write files into it. */
export interface Project {
  dir: string;
  /** Absolute path of `rel`. */
  p(rel: string): string;
  /** Write `rel` (creating folders). */
  write(rel: string, text: string | Buffer): Promise<string>;
  read(rel: string): Promise<Buffer>;
  cleanup(): Promise<void>;
}

export async function project(prefix: string): Promise<Project> {
  const dir = await mkdtemp(path.join(tmpdir(), `dativo-${prefix}-`));
  const p = (rel: string): string => path.join(dir, rel);
  return {
    dir,
    p,
    async write(rel, text) {
      await mkdir(path.dirname(p(rel)), { recursive: true });
      await writeFile(p(rel), text);
      return p(rel);
    },
    read: (rel) => readFile(p(rel)),
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

/**
 * Every file under `dir`, relative path → sha256 of its bytes (empty when
 * `dir` does not exist). Two equal snapshots mean nothing was added, removed
 * or changed.
 */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const walk = async (d: string): Promise<void> => {
    let entries;
    try {
      entries = await readdir(d, { withFileTypes: true });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR') return;
      throw err;
    }
    for (const e of entries) {
      const full = path.join(d, e.name);
      if (e.isDirectory()) await walk(full);
      else out[path.relative(dir, full)] = createHash('sha256').update(await readFile(full)).digest('hex');
    }
  };
  await walk(dir);
  return out;
}

/** Parquet files under `dir`, absolute, sorted. */
export async function parquetFiles(dir: string): Promise<string[]> {
  return Object.keys(await snapshot(dir))
    .filter((f) => f.endsWith('.parquet'))
    .map((f) => path.join(dir, f))
    .sort();
}

/** The orders asset used by most CLI tests (domain `shop`). */
export const ORDERS_ASSET = `apiVersion: v3.0.2
kind: DataContract
name: orders
version: "1.0"
domain: shop
schema:
  - {name: id, type: long, required: true}
  - {name: amount, type: "decimal(12,2)"}
  - {name: at, type: timestamp}
  - {name: day, type: date}
  - {name: note, type: string}
primary_key: [id]
`;

export const ORDERS_HEADER = 'id,amount,at,day,note';

/** A CSV job over `data/*.csv` into `wh/`, state in `state/job.json`, rejects in `rejects/`. */
export function ordersJob(extra: { mode?: 'warn' | 'strict'; lines?: string[] } = {}): string {
  return [
    'tenant_id: t1',
    'source_connector: csv',
    'target_connector: parquet',
    'asset_path: asset.yaml',
    'source:',
    '  files: [{path: "data/*.csv", object: orders}]',
    '  incremental: {strategy: file_modified_time}',
    // The tests write whole files: finished at once (no wait for a writer).
    '  settle_seconds: 0',
    'target:',
    '  warehouse: wh',
    'state: {path: state/job.json}',
    'reject_dir: rejects',
    `schema_validation_mode: ${extra.mode ?? 'warn'}`,
    'logging: {level: info}',
    ...(extra.lines ?? []),
    '',
  ].join('\n');
}

/** A project with the orders asset, a job (`job.yaml`) and `data/a.csv` holding `rows`. */
export async function ordersProject(prefix: string, opts: { mode?: 'warn' | 'strict'; rows?: string[] } = {}): Promise<Project> {
  const pr = await project(prefix);
  await pr.write('asset.yaml', ORDERS_ASSET);
  await pr.write('job.yaml', ordersJob(opts.mode ? { mode: opts.mode } : {}));
  await pr.write('data/a.csv', `${[ORDERS_HEADER, ...(opts.rows ?? ['1,10.00,2024-01-01T00:00:00Z,2024-01-01,first', '2,20.00,2024-01-02T00:00:00Z,2024-01-02,second'])].join('\n')}\n`);
  return pr;
}

/** Parse the single JSON line `dativo run --json` prints; fails unless stdout is exactly one line. */
export function jsonLine<T = RunJson>(stdout: string): T {
  const lines = stdout.split('\n');
  if (lines.length !== 2 || lines[1] !== '') throw new Error(`expected exactly one line on stdout, got ${JSON.stringify(stdout)}`);
  return JSON.parse(lines[0] as string) as T;
}

/** The `--json` summary of one job. */
export interface RunJson {
  run_id: string;
  exit_code: number;
  objects: {
    name: string;
    rows_read: number;
    rows_written: number;
    rows_rejected: number;
    files: string[];
    cursor?: unknown;
    reject_file?: string;
    error?: { code: string; message: string };
  }[];
  error?: { code: string; message: string; problems?: { file: string; key: string; message: string }[] };
}

/** The pino JSON lines of stderr (other lines skipped). */
export function logLines(stderr: string): Record<string, unknown>[] {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}
