/**
 * Each scheduled run is a child process (`dativo run <job> --json`), so a
 * crash or an out-of-memory abort in a job never takes the scheduler down.
 * The child leads its own process group: a Ctrl-C on the scheduler's
 * terminal reaches the scheduler only, which then decides (grace period,
 * SIGTERM, SIGKILL); a signal from the scheduler reaches the whole group.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** What to start for a run. */
export interface ChildCommand {
  file: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /**
   * The child prints a `dativo run --json` summary on stdout, and an exit code
   * without a matching one is a crash (lib/schedule/policy.ts `outcomeOf`).
   */
  requireSummary: boolean;
}

/** The part of a `dativo run --json` summary the scheduler reads. */
export interface ChildSummary {
  run_id?: string;
  exit_code?: number;
  objects?: { rows_written?: number; rows_rejected?: number }[];
  error?: { code?: string; message?: string };
}

/** How a child ended. */
export interface ChildResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  summary?: ChildSummary;
  /** Set when the process could not be started at all. */
  spawnError?: string;
  /** Its last stderr lines (for a crash's message). */
  stderrTail: string[];
}

export interface RunningChild {
  readonly pid: number | undefined;
  readonly done: Promise<ChildResult>;
  /** Send `sig` to the child's process group. */
  signal(sig: NodeJS.Signals): void;
}

/** stdout kept for the summary: it is one line of a few KB; a child printing more is not `dativo run --json`. */
const MAX_STDOUT = 8 * 1024 * 1024;
const TAIL_LINES = 20;

/** The last line of `stdout` that parses as a JSON object. */
export function parseSummary(stdout: string): ChildSummary | undefined {
  const lines = stdout.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const line = lines[i]!.trim();
    if (!line.startsWith('{')) continue;
    try {
      const v = JSON.parse(line) as unknown;
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) return v as ChildSummary;
    } catch {
      // not a summary line
    }
  }
  return undefined;
}

/** Start `cmd`; `onStderrLine` gets each line of its stderr (its pino log lines) as it comes. */
export function startChild(cmd: ChildCommand, onStderrLine?: (line: string) => void): RunningChild {
  const child = spawn(cmd.file, cmd.args, {
    env: cmd.env ?? process.env,
    ...(cmd.cwd !== undefined ? { cwd: cmd.cwd } : {}),
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let stdout = '';
  let partial = '';
  const tail: string[] = [];
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.stdout.on('data', (c: string) => {
    if (stdout.length < MAX_STDOUT) stdout += c;
  });
  const line = (l: string): void => {
    if (l === '') return;
    tail.push(l);
    if (tail.length > TAIL_LINES) tail.shift();
    onStderrLine?.(l);
  };
  child.stderr.on('data', (c: string) => {
    const parts = (partial + c).split('\n');
    partial = parts.pop() ?? '';
    for (const l of parts) line(l);
  });
  const done = new Promise<ChildResult>((resolve) => {
    let spawnError: string | undefined;
    child.on('error', (err) => {
      spawnError = err.message;
      // 'close' may never come when the spawn itself failed.
      if (child.pid === undefined) resolve({ code: null, signal: null, spawnError, stderrTail: tail });
    });
    child.on('close', (code, signal) => {
      line(partial);
      const summary = parseSummary(stdout);
      resolve({ code, signal, ...(summary !== undefined ? { summary } : {}), ...(spawnError !== undefined ? { spawnError } : {}), stderrTail: tail });
    });
  });
  return {
    pid: child.pid,
    done,
    signal(sig) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      try {
        if (child.pid !== undefined) process.kill(-child.pid, sig);
      } catch {
        child.kill(sig);
      }
    },
  };
}

/** The CLI entry point next to this module: `bin.js` when built, `bin.ts` from a checkout (run under tsx). */
export function cliEntry(): { file: string; loader: string[] } {
  const js = fileURLToPath(new URL('../cli/bin.js', import.meta.url));
  if (existsSync(js)) return { file: js, loader: [] };
  return { file: fileURLToPath(new URL('../cli/bin.ts', import.meta.url)), loader: ['--import', import.meta.resolve('tsx')] };
}

/** Options `dativo schedule` passes on to each `dativo run`. */
export interface DativoRunOptions {
  secretsDir?: string | undefined;
  mode?: 'self_hosted' | 'cloud' | undefined;
  logLevel?: string | undefined;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** `node <bin> run <job> --json [...]`: the child of every scheduled run. */
export function dativoRunCommand(jobFile: string, o: DativoRunOptions = {}): ChildCommand {
  const entry = cliEntry();
  return {
    file: process.execPath,
    args: [
      ...entry.loader,
      entry.file,
      'run',
      jobFile,
      '--json',
      ...(o.secretsDir !== undefined ? ['--secrets-dir', o.secretsDir] : []),
      ...(o.mode !== undefined ? ['--mode', o.mode] : []),
      ...(o.logLevel !== undefined ? ['--log-level', o.logLevel] : []),
    ],
    ...(o.env !== undefined ? { env: o.env } : {}),
    ...(o.cwd !== undefined ? { cwd: o.cwd } : {}),
    requireSummary: true,
  };
}
