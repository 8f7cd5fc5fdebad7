/**
 * Per-job run locks: a second run of a job that is running exits at once
 * (JOB_LOCKED, exit 2: a scheduler retries later) with a message naming the
 * holder. The lock is a courtesy on top of the real guarantee, the
 * compare-and-set inside the table commit (lib/iceberg/target.ts): it keeps
 * two runs from reading the same rows twice, the commit keeps them from
 * landing twice even where the lock cannot reach (another machine).
 *
 * {@link JobLock} is the seam: {@link fileJobLock} holds on one machine (a
 * file next to the job's state); {@link postgresJobLock} (lib/lock-postgres.ts,
 * an advisory lock) holds across machines. {@link openJobLock} picks the one a
 * plan names.
 */
import { readFileSync } from 'node:fs';
import { open, readFile, stat, unlink } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { DativoError } from './errors.js';
import type { Logger } from './log.js';
import { postgresJobLock } from './lock-postgres.js';
import type { JobPlan } from './plan.js';
import { makeDirs } from './storage/local.js';

/** Who holds a lock. */
export interface LockHolder {
  pid: number;
  host: string;
  /** ISO time the holder took the lock. */
  since: string;
  /** Run id of the holder, when it is a run. */
  runId?: string;
}

/** A lock that is held: release it when the run ends (idempotent). */
export interface HeldLock {
  readonly holder: LockHolder;
  /**
   * Aborted (reason: a JOB_LOCKED DativoError) when the lock is lost while
   * held (a distributed lock's connection broke); the run stops before its
   * next commit. Absent for a lock that cannot be lost (the file lock).
   */
  readonly signal?: AbortSignal;
  release(): Promise<void>;
}

/** A per-job lock. */
export interface JobLock {
  /**
   * Take the lock or throw JOB_LOCKED (context: pid, host, since) at once
   * when a live run holds it. A lock left by a dead process is taken over.
   */
  acquire(who: { runId?: string }): Promise<HeldLock>;
}

/** Paths this process holds: a lock file naming our own pid is stale unless listed here (the pid of a previous process, reused). */
const heldHere = new Set<string>();

/** Whether a process with this pid exists on this machine and is not younger than the lock (pid reuse). */
function alive(holder: LockHolder): boolean {
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  const started = processStartMs(holder.pid);
  const since = Date.parse(holder.since);
  // A process that started after the lock was taken cannot be its holder.
  return started === undefined || !Number.isFinite(since) || started <= since + 2_000;
}

/** Start time of a process (Linux /proc); undefined where it cannot be told. */
function processStartMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[19]);
    const btime = Number(/^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'))?.[1]);
    if (!Number.isFinite(ticks) || !Number.isFinite(btime)) return undefined;
    // USER_HZ is 100 on every Linux ABI Node runs on.
    return btime * 1000 + (ticks / 100) * 1000;
  } catch {
    return undefined;
  }
}

function parseHolder(text: string): LockHolder | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockHolder>;
    if (typeof v.pid === 'number' && typeof v.host === 'string' && typeof v.since === 'string') return v as LockHolder;
  } catch {
    // a torn or foreign file: see below
  }
  return undefined;
}

/** Create `path` with `text` only if it does not exist; false when it does. */
async function createExclusive(path: string, text: string): Promise<boolean> {
  let h;
  try {
    h = await open(path, 'wx', 0o644);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw lockError(err, path);
  }
  try {
    await h.writeFile(text, 'utf8');
    await h.sync();
  } finally {
    await h.close();
  }
  return true;
}

function lockError(err: unknown, path: string): DativoError {
  const code = (err as NodeJS.ErrnoException).code;
  const writable = code === 'EACCES' || code === 'EPERM' || code === 'EROFS' || code === 'ENOTDIR';
  return new DativoError(writable ? 'STORAGE_NOT_WRITABLE' : 'STORAGE_IO', `cannot use lock file ${path}: ${(err as Error).message}`, {
    cause: err,
    context: { file: path, syscallCode: code },
  });
}

async function readText(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw lockError(err, path);
  }
}

/**
 * A lock file at `path`, created with O_EXCL and holding
 * `{pid, host, since, runId}`. A file whose holder is on this host and no
 * longer running (or whose pid now belongs to a younger process) is taken
 * over and the takeover logged; a holder on another host cannot be checked
 * and counts as live (remove the file by hand once that run is known dead).
 * Two processes taking over the same stale file at once are serialised by a
 * second O_EXCL file (`<path>.takeover`), so exactly one wins.
 */
export function fileJobLock(path: string, log?: Logger): JobLock {
  const host = hostname();
  return {
    async acquire(who) {
      try {
        await makeDirs(dirname(path));
      } catch (err) {
        throw lockError(err, path);
      }
      const holder: LockHolder = { pid: process.pid, host, since: new Date().toISOString(), ...(who.runId ? { runId: who.runId } : {}) };
      const text = JSON.stringify(holder) + '\n';
      for (let attempt = 0; attempt < 5; attempt++) {
        if (await createExclusive(path, text)) {
          heldHere.add(path);
          let released = false;
          return {
            holder,
            async release() {
              if (released) return;
              released = true;
              heldHere.delete(path);
              // Only our own file: never remove a lock someone took over from us.
              if ((await readText(path).catch(() => undefined)) === text) await unlink(path).catch(() => undefined);
            },
          };
        }
        const seen = await readText(path);
        if (seen === undefined) continue; // released meanwhile
        const other = parseHolder(seen);
        const stale =
          other === undefined
            ? await tornFile(path)
            : other.host === host && (other.pid === process.pid ? !heldHere.has(path) : !alive(other));
        if (!stale && other === undefined) {
          // Being written right now: look again shortly.
          await new Promise((r) => setTimeout(r, 200));
          continue;
        }
        if (!stale && other !== undefined) {
          const h = other;
          throw new DativoError(
            'JOB_LOCKED',
            `another run of this job is running (pid ${h.pid} on ${h.host} since ${h.since}${h.runId ? `, run ${h.runId}` : ''}); lock file ${path}`,
            { context: { file: path, pid: h.pid, host: h.host, since: h.since, ...(h.runId ? { runId: h.runId } : {}) } },
          );
        }
        await takeOver(path, seen);
        log?.warn(
          { event_type: 'lock_taken_over', file: path, ...(other ? { stale_pid: other.pid, stale_host: other.host, stale_since: other.since } : {}) },
          other ? `took over the lock left by dead process ${other.pid} on ${other.host} (since ${other.since})` : `replaced the unreadable lock file ${path}`,
        );
      }
      throw new DativoError('JOB_LOCKED', `could not take the lock ${path}: it keeps changing hands`, { context: { file: path } });
    },
  };
}

/** A lock file that does not parse: stale once it is older than a write could take (a crash between create and write). */
async function tornFile(path: string): Promise<boolean> {
  try {
    return Date.now() - (await stat(path)).mtimeMs > 5_000;
  } catch {
    return true;
  }
}

/** Remove the stale lock file if it still holds `seen`, under the takeover mutex. */
async function takeOver(path: string, seen: string): Promise<void> {
  const mutex = `${path}.takeover`;
  if (!(await createExclusive(mutex, String(process.pid)))) {
    // Someone else is taking over; a mutex left by a crash mid-takeover expires.
    try {
      if (Date.now() - (await stat(mutex)).mtimeMs > 30_000) await unlink(mutex);
    } catch {
      // gone already
    }
    await new Promise((r) => setTimeout(r, 50));
    return;
  }
  try {
    if ((await readText(path)) === seen) await unlink(path).catch(() => undefined);
  } finally {
    await unlink(mutex).catch(() => undefined);
  }
}

/** Where the file lock of a job lives: next to its state file (`<state dir>/<tenant>/<job>.lock`). */
export function jobLockPath(statePath: string): string {
  return statePath.endsWith('.json') ? `${statePath.slice(0, -'.json'.length)}.lock` : `${statePath}.lock`;
}

/**
 * The lock a run of `plan` takes: `plan.lock`, else the default of its state
 * store (a file lock beside a file state, a Postgres advisory lock in a
 * Postgres state's database, so runs on different machines exclude each other).
 */
export function openJobLock(plan: Pick<JobPlan, 'state' | 'lock' | 'tenantId' | 'name'>, log?: Logger): JobLock {
  const spec = plan.lock ?? (plan.state.kind === 'postgres' ? { kind: 'postgres', url: plan.state.url } : { kind: 'file', path: jobLockPath(plan.state.path) });
  if (spec.kind === 'postgres') return postgresJobLock(spec.url, { tenant: plan.tenantId, job: plan.name }, log);
  return fileJobLock(spec.path, log);
}
