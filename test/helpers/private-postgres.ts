/**
 * A private, throw-away PostgreSQL cluster for tests that need real password
 * authentication: the shared server on 127.0.0.1:5432 trusts everyone, so a
 * wrong password cannot fail there.
 *
 * `initdb --auth=scram-sha-256` into a temp folder, `postgres` on a free
 * loopback port with its socket in that folder, a fast shutdown and the folder
 * removed by `stop()`. As root, initdb and postgres run as the `postgres` OS
 * user (they refuse to run as root): the postmaster is spawned with that
 * user's uid/gid, so the child process is the postmaster itself and can be
 * signalled directly. Missing binaries are an error, never a skip.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { chown, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';

/** A running private cluster. */
export interface PrivatePostgres {
  /** Always `127.0.0.1`. */
  host: string;
  port: number;
  /** The superuser, `postgres`. */
  user: string;
  /** The superuser's password (scram-sha-256). */
  password: string;
  /** Data directory (inside the temp folder that `stop()` removes). */
  dataDir: string;
  /** Fast shutdown, then remove the temp folder. Safe to call twice. */
  stop(): Promise<void>;
}

/** Options of {@link startPrivatePostgres}. */
export interface PrivatePostgresOptions {
  /** Superuser password (default: a fixed test value). */
  password?: string;
  /** How long to wait for the server to accept connections (default 30 s). */
  readyTimeoutMs?: number;
}

const SUPERUSER = 'postgres';

/**
 * The `bin` folder of the highest PostgreSQL version under
 * `/usr/lib/postgresql`, else `pg_config --bindir`; throws when neither has
 * `initdb` and `postgres`.
 */
export function findPostgresBinDir(): string {
  const candidates: string[] = [];
  const root = '/usr/lib/postgresql';
  if (existsSync(root)) {
    const versions = readdirSync(root)
      .filter((v) => /^\d+(\.\d+)?$/.test(v))
      .sort((a, b) => Number(b) - Number(a));
    candidates.push(...versions.map((v) => path.join(root, v, 'bin')));
  }
  const pgConfig = spawnSync('pg_config', ['--bindir'], { encoding: 'utf8' });
  if (pgConfig.status === 0 && pgConfig.stdout.trim() !== '') candidates.push(pgConfig.stdout.trim());
  const found = candidates.find((d) => existsSync(path.join(d, 'initdb')) && existsSync(path.join(d, 'postgres')));
  if (!found) {
    throw new Error(
      `PostgreSQL server binaries (initdb, postgres) not found in ${candidates.join(', ') || `${root}/<version>/bin or pg_config --bindir`}; install the postgresql server package`,
    );
  }
  return found;
}

/** uid/gid of the `postgres` OS user, or undefined when we are not root (then we run as ourselves). */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string): number => {
    const r = spawnSync('id', [flag, SUPERUSER], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`running as root, but there is no '${SUPERUSER}' OS user to run initdb/postgres as: ${r.stderr.trim()}`);
    return Number(r.stdout.trim());
  };
  return { uid: id('-u'), gid: id('-g') };
}

/** A port that was free on 127.0.0.1 a moment ago. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

/** Run `cmd` to completion (as `user` when given); reject with its output on failure. */
function run(cmd: string, args: string[], user: { uid: number; gid: number } | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...user });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (out += c.toString()));
    child.once('error', reject);
    child.once('close', (code, signal) => {
      if (code === 0) resolve();
      else reject(new Error(`${path.basename(cmd)} failed (exit ${code ?? signal}):\n${out}`));
    });
  });
}

/** Whether the postmaster accepts an authenticated connection right now. */
async function accepts(host: string, port: number, password: string): Promise<boolean> {
  const c = new pg.Client({ host, port, user: SUPERUSER, password, database: 'postgres', connectionTimeoutMillis: 2000 });
  c.on('error', () => undefined);
  try {
    await c.connect();
    await c.query('SELECT 1');
    return true;
  } catch {
    return false;
  } finally {
    await c.end().catch(() => undefined);
  }
}

/** Whether the child is still running (a failed spawn never ran). */
function alive(child: ChildProcess | undefined): boolean {
  return child?.pid !== undefined && child.exitCode === null && child.signalCode === null;
}

/** Ends with the child, resolving immediately when it is not running. */
function exited(child: ChildProcess): Promise<void> {
  if (!alive(child)) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/**
 * Start a private cluster with scram-sha-256 auth on a free port of
 * 127.0.0.1. Register `stop()` with `after()`; a process exit also kills the
 * postmaster and removes the folder, so an aborted test run leaves nothing.
 */
export async function startPrivatePostgres(opts: PrivatePostgresOptions = {}): Promise<PrivatePostgres> {
  const bin = findPostgresBinDir();
  const user = serverUser();
  const password = opts.password ?? 'dativo-private-superuser';
  const host = '127.0.0.1';
  const base = await mkdtemp(path.join(tmpdir(), 'dativo-private-pg-'));
  const dataDir = path.join(base, 'data');
  let child: ChildProcess | undefined;
  // Synchronous last resort for a test process that exits without after().
  const onExit = (): void => {
    if (child?.pid !== undefined && alive(child)) {
      try {
        process.kill(child.pid, 'SIGQUIT');
      } catch {
        /* already gone */
      }
    }
    rmSync(base, { recursive: true, force: true });
  };
  process.once('exit', onExit);

  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    if (child && alive(child)) {
      // SIGINT to the postmaster is a fast shutdown; SIGQUIT if it hangs.
      child.kill('SIGINT');
      const timer = setTimeout(() => child?.kill('SIGQUIT'), 10_000);
      await exited(child);
      clearTimeout(timer);
    }
    process.removeListener('exit', onExit);
    await rm(base, { recursive: true, force: true });
  };

  try {
    const pwfile = path.join(base, 'pwfile');
    await writeFile(pwfile, `${password}\n`, { mode: 0o600 });
    if (user) {
      await chown(base, user.uid, user.gid);
      await chown(pwfile, user.uid, user.gid);
    }
    await run(
      path.join(bin, 'initdb'),
      ['-D', dataDir, '--auth=scram-sha-256', `--username=${SUPERUSER}`, `--pwfile=${pwfile}`, '--encoding=UTF8', '--locale=C', '--no-sync', '--no-instructions'],
      user,
    );

    const deadline = Date.now() + (opts.readyTimeoutMs ?? 30_000);
    // The free port can be taken between probe and bind: try a few.
    for (let attempt = 1; ; attempt++) {
      const port = await freePort();
      let log = '';
      const pm = spawn(
        path.join(bin, 'postgres'),
        ['-D', dataDir, '-p', String(port), '-c', `listen_addresses=${host}`, '-k', base, '-c', 'fsync=off', '-c', 'full_page_writes=off'],
        { stdio: ['ignore', 'pipe', 'pipe'], ...user },
      );
      child = pm;
      // Keep the last few KB of the server log for error messages; draining the pipe also keeps postgres from blocking on it.
      const keep = (c: Buffer): void => void (log = (log + c.toString()).slice(-8192));
      pm.stdout?.on('data', keep);
      pm.stderr?.on('data', keep);
      pm.once('error', (err) => (log += `\nspawn error: ${err.message}`));
      while (alive(pm) && Date.now() < deadline) {
        if (await accepts(host, port, password)) return { host, port, user: SUPERUSER, password, dataDir, stop };
        await new Promise((r) => setTimeout(r, 100));
      }
      if (alive(pm)) {
        throw new Error(`private postgres on ${host}:${port} did not accept connections within ${opts.readyTimeoutMs ?? 30_000} ms; server log:\n${log}`);
      }
      if (attempt < 3 && /could not bind|address already in use/i.test(log)) continue;
      throw new Error(`private postgres exited during startup (exit ${pm.exitCode ?? pm.signalCode}); server log:\n${log}`);
    }
  } catch (err) {
    await stop();
    throw err;
  }
}
