/**
 * The tap as a child process, written once for Singer and Airbyte: the
 * command checked before it starts (missing or not executable → exit 3
 * naming it), its files in a private temp folder (0700, files 0600, removed
 * afterwards), its stderr forwarded to our log and its last lines kept for
 * the error, a per-run timeout, and a kill that always lands.
 */
import { spawn, type ChildProcessByStdio } from 'node:child_process';
import { constants } from 'node:fs';
import { access, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { DativoError } from '../../lib/errors.js';
import { scrub, type Logger } from '../../lib/log.js';
import { LineSplitter } from './lines.js';

/** Last stderr lines kept for an error message. */
const STDERR_TAIL_LINES = 20;
/** Longest stderr line kept or logged. */
const STDERR_LINE_CHARS = 1000;
/** How long a tap gets to exit after SIGTERM before SIGKILL. */
const KILL_GRACE_MS = 2000;

/** Where a command comes from in the job, for messages: `source.command`. */
export interface CommandOrigin {
  file: string;
  key: string;
  connector: string;
}

/**
 * The executable of `argv[0]`, resolved: a name without `/` is looked up on
 * PATH, a path resolves against `cwd`.
 * @throws DativoError CONFIG_INVALID naming the command when it does not
 *   exist or is not executable.
 */
export async function resolveCommand(argv: readonly string[], cwd: string, env: NodeJS.ProcessEnv, origin: CommandOrigin): Promise<string> {
  const cmd = argv[0] ?? '';
  const fail = (why: string): DativoError =>
    new DativoError('CONFIG_INVALID', `${origin.key}: ${JSON.stringify(cmd)} ${why}`, {
      problems: [{ file: origin.file, key: origin.key, message: `${JSON.stringify(cmd)} ${why}` }],
      context: { connector: origin.connector, file: origin.file, key: origin.key, command: cmd },
    });
  const executable = async (p: string): Promise<'ok' | 'missing' | 'not_executable'> => {
    try {
      const s = await stat(p);
      if (!s.isFile()) return 'not_executable';
      await access(p, constants.X_OK);
      return 'ok';
    } catch (err) {
      return (err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ENOTDIR' ? 'missing' : 'not_executable';
    }
  };
  if (cmd.includes('/') || cmd.includes(path.sep)) {
    const p = path.resolve(cwd, cmd);
    const found = await executable(p);
    if (found === 'missing') throw fail(`does not exist (${p})`);
    if (found === 'not_executable') throw fail(`is not an executable file (${p}): chmod +x it, or run it through its interpreter, e.g. [node, ${cmd}]`);
    return p;
  }
  if (cmd === '') throw fail('is empty');
  let notExecutable: string | undefined;
  for (const dir of (env['PATH'] ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const p = path.join(dir, cmd);
    const found = await executable(p);
    if (found === 'ok') return p;
    if (found === 'not_executable') notExecutable ??= p;
  }
  throw fail(notExecutable !== undefined ? `is not executable (${notExecutable})` : 'was not found on PATH (install it, e.g. `pipx install <tap>`, or give its path)');
}

const TAP_DIR_PREFIX = 'dativo-tap-';
/** File in a tap folder naming the process that made it. */
const OWNER_FILE = '.owner';

/** True unless `pid` is certainly gone (ESRCH). */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}

/**
 * Remove the tap folders of processes that died without removing them (a
 * `dativo run` killed by SIGKILL): they hold a tap's config, secrets
 * included. Folders of live processes, or without an owner, are left alone.
 */
async function sweepOrphans(root: string): Promise<void> {
  const names = await readdir(root).catch(() => [] as string[]);
  await Promise.all(
    names
      .filter((n) => n.startsWith(TAP_DIR_PREFIX))
      .map(async (n) => {
        const pid = Number(await readFile(path.join(root, n, OWNER_FILE), 'utf8').catch(() => ''));
        if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && !alive(pid)) await rm(path.join(root, n), { recursive: true, force: true }).catch(() => undefined);
      }),
  );
}

/**
 * A private folder for one tap run's files (config, catalog, state):
 * created 0700 under the system temp folder, files written 0600, all
 * removed by {@link TapFiles.remove} (idempotent). Creating one also
 * removes the folders that killed runs left behind.
 */
export class TapFiles {
  private constructor(readonly dir: string) {}

  static async create(): Promise<TapFiles> {
    const root = tmpdir();
    await sweepOrphans(root);
    const files = new TapFiles(await mkdtemp(path.join(root, TAP_DIR_PREFIX)));
    await files.write(OWNER_FILE, String(process.pid));
    return files;
  }

  /** Write `name` (0600) and return its absolute path. */
  async write(name: string, text: string): Promise<string> {
    const p = path.join(this.dir, name);
    await writeFile(p, text, { mode: 0o600, flag: 'wx' });
    return p;
  }

  async remove(): Promise<void> {
    await rm(this.dir, { recursive: true, force: true });
  }
}

/** How a tap process ended. */
export interface TapExit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** We ended it: past its timeout, or the read was destroyed/aborted. */
  killedBy?: 'timeout' | 'us';
}

/** Options of {@link startTap}. */
export interface StartTapOptions {
  argv: readonly string[];
  cwd: string;
  env: NodeJS.ProcessEnv;
  log: Logger;
  /** Kill it after this long (ms). */
  timeoutMs: number;
  /** Values to mask in stderr lines kept for errors. */
  secrets: readonly string[];
  origin: CommandOrigin;
  /** Spawn already resolved argv[0]; default {@link resolveCommand}. */
  resolved?: string;
}

/** Map a Singer/Python-style stderr line to a log level by its first word. */
function levelOf(line: string): 'debug' | 'info' | 'warn' | 'error' {
  const m = /^\s*(?:\S+\s+)?(DEBUG|INFO|WARN|WARNING|ERROR|CRITICAL|FATAL)\b/.exec(line);
  switch (m?.[1]) {
    case 'DEBUG':
      return 'debug';
    case 'WARN':
    case 'WARNING':
      return 'warn';
    case 'ERROR':
    case 'CRITICAL':
    case 'FATAL':
      return 'error';
    default:
      return 'info';
  }
}

/** A running tap: its stdout, how it ended, its stderr's last lines, and a kill. */
export class TapProcess {
  readonly stdout: Readable;
  /** Resolves once the process exited and its pipes closed. */
  readonly exited: Promise<TapExit>;
  readonly #child: ChildProcessByStdio<null, Readable, Readable>;
  readonly #tail: string[] = [];
  readonly #secrets: readonly string[];
  readonly #timer: NodeJS.Timeout;
  #killedBy: TapExit['killedBy'];
  #done = false;

  private constructor(child: ChildProcessByStdio<null, Readable, Readable>, opts: StartTapOptions, onTimeout: () => void) {
    this.#child = child;
    this.#secrets = opts.secrets;
    this.stdout = child.stdout;
    const splitter = new LineSplitter(64 * 1024);
    const onLine = (raw: string): void => {
      const line = raw.length > STDERR_LINE_CHARS ? `${raw.slice(0, STDERR_LINE_CHARS)}…` : raw;
      if (line.trim() === '') return;
      this.#tail.push(line);
      if (this.#tail.length > STDERR_TAIL_LINES) this.#tail.shift();
      opts.log[levelOf(line)]({ event_type: 'tap_stderr', line }, line);
    };
    child.stderr.on('data', (c: Buffer) => {
      for (const l of splitter.push(c)) onLine('text' in l ? l.text : `${l.head} … (${l.bytes} bytes)`);
    });
    child.stderr.on('end', () => {
      for (const l of splitter.end()) onLine('text' in l ? l.text : l.head);
    });
    this.#timer = setTimeout(() => {
      this.#killedBy ??= 'timeout';
      this.kill();
      onTimeout();
    }, opts.timeoutMs);
    this.#timer.unref();
    this.exited = new Promise<TapExit>((resolve) => {
      child.on('close', (code, signal) => {
        this.#done = true;
        clearTimeout(this.#timer);
        resolve({ code, signal, ...(this.#killedBy ? { killedBy: this.#killedBy } : {}) });
      });
    });
  }

  /**
   * Start a tap: resolve its command (CONFIG_INVALID naming it when missing
   * or not executable), spawn it with stdin closed, and wait until it runs.
   * `onTimeout` is called when the timeout killed it.
   */
  static async start(opts: StartTapOptions, onTimeout: () => void = () => undefined): Promise<TapProcess> {
    const file = opts.resolved ?? (await resolveCommand(opts.argv, opts.cwd, opts.env, opts.origin));
    const child = spawn(file, opts.argv.slice(1), { cwd: opts.cwd, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', () => resolve());
      child.once('error', (err: NodeJS.ErrnoException) =>
        reject(
          new DativoError('CONFIG_INVALID', `${opts.origin.key}: cannot start ${JSON.stringify(opts.argv[0])}: ${err.message}`, {
            cause: err,
            problems: [{ file: opts.origin.file, key: opts.origin.key, message: `cannot start ${JSON.stringify(opts.argv[0])}: ${err.message}` }],
            context: { connector: opts.origin.connector, file: opts.origin.file, key: opts.origin.key, command: opts.argv[0] },
          }),
        ),
      );
    });
    // After the spawn, a failure shows in how it exits; an 'error' without a listener would throw.
    child.on('error', (err) => opts.log.warn({ event_type: 'tap_process_error', err }, `tap process error: ${err.message}`));
    child.stdout.on('error', () => undefined);
    child.stderr.on('error', () => undefined);
    return new TapProcess(child, opts, onTimeout);
  }

  /** The last lines the tap wrote to stderr, secrets masked. */
  stderrTail(): string[] {
    return this.#tail.map((l) => scrub(l, this.#secrets));
  }

  /** " (stderr: …)" for an error message, or "" when the tap wrote nothing there. */
  stderrSuffix(): string {
    const tail = this.stderrTail();
    return tail.length === 0 ? '' : `; last stderr lines:\n  ${tail.join('\n  ')}`;
  }

  /** End the process: SIGTERM, then SIGKILL if it is still there after a grace period. Idempotent. */
  kill(): void {
    clearTimeout(this.#timer);
    if (this.#done) return;
    this.#killedBy ??= 'us';
    this.#child.kill('SIGTERM');
    // Its stdout may be paused by backpressure: drain it so the process can see its pipe close.
    this.#child.stdout.resume();
    const hard = setTimeout(() => {
      if (!this.#done) this.#child.kill('SIGKILL');
    }, KILL_GRACE_MS);
    hard.unref();
  }
}

/**
 * The error for a tap that ended without success: exit code, signal or
 * timeout in the message with its stderr's last lines. TAP_FAILED, exit 2.
 */
export function tapExitError(what: string, exit: TapExit, proc: TapProcess, timeoutMs: number, context: Record<string, unknown>): DativoError {
  const how =
    exit.killedBy === 'timeout'
      ? `did not finish within its timeout (${Math.round(timeoutMs / 1000)} s, source.timeout_seconds) and was killed`
      : exit.signal !== null
        ? `was killed by ${exit.signal}`
        : `exited with code ${exit.code}`;
  return new DativoError('TAP_FAILED', `${what} ${how}${proc.stderrSuffix()}`, {
    context: { ...context, exitCode: exit.code, signal: exit.signal, ...(exit.killedBy === 'timeout' ? { reason: 'timeout' } : {}), stderr: proc.stderrTail() },
  });
}
