/**
 * A per-job lock that holds across machines: a Postgres session-level
 * advisory lock (`pg_try_advisory_lock`) on a connection of its own, kept
 * open for the whole run.
 *
 * Why an advisory lock and not a Redis lock with a TTL: the server releases
 * it the moment the holder's connection ends, so a holder that dies (SIGKILL,
 * out of memory, a crashed machine) frees it without a lease to tune, and a
 * holder whose event loop is blocked for minutes keeps it (there is no lease
 * to renew, the failure mode of BullMQ #3056). TCP keepalives on both ends
 * (the session's `tcp_keepalives_*` and the client socket) end the session of
 * a machine that vanished without closing it within about a minute. If the
 * lock connection breaks while the run goes on, the lock is lost: the held
 * lock's `signal` aborts, which ends the run before its next commit; and the
 * commit's compare-and-set in the table (lib/iceberg/target.ts) remains the
 * fence that keeps two runs from both landing.
 *
 * The key is 64 bits of SHA-256 over `dativo-job-lock/<tenant>/<job>`. The
 * holder names itself in its session's `application_name`
 * (`dativo-lock <pid> <run id> <host>`), so a refused run can say who holds it.
 */
import { createHash } from 'node:crypto';
import { hostname } from 'node:os';
import type { Client } from 'pg';
import { DativoError, isDativoError } from './errors.js';
import type { HeldLock, JobLock, LockHolder } from './lock.js';
import { displayUri, type Logger } from './log.js';
import { isPgAuthError, pgConnectionString } from './pg-client.js';

/** Tenant and job the lock belongs to. */
export interface LockIds {
  tenant: string;
  job: string;
}

/** The advisory lock key of a job: a signed 64-bit integer, as a decimal string. */
export function advisoryKey(ids: LockIds): string {
  const digest = createHash('sha256').update(`dativo-job-lock/${ids.tenant}/${ids.job}`).digest();
  return digest.readBigInt64BE(0).toString();
}

/** `application_name` is cut at 63 bytes by the server; the host goes last so the pid and run id survive. */
function applicationName(holder: LockHolder): string {
  return Buffer.from(`dativo-lock ${holder.pid} ${holder.runId ?? '-'} ${holder.host}`).subarray(0, 63).toString('utf8').replace(/\uFFFD$/, '');
}

function parseApplicationName(name: string): { pid?: number; runId?: string; host?: string } {
  const m = /^dativo-lock (\d+) (\S+) (.*)$/.exec(name);
  if (!m) return {};
  return { pid: Number(m[1]), ...(m[2] !== '-' ? { runId: m[2] as string } : {}), host: m[3] as string };
}

/** A Postgres advisory lock on the database at `url` for one job. */
export function postgresJobLock(url: string, ids: LockIds, log?: Logger): JobLock {
  const key = advisoryKey(ids);
  const where = displayUri(url);
  const failed = (err: unknown, op: string): DativoError => {
    if (isDativoError(err)) return err;
    const e = err as { code?: string; message?: string };
    const msg = `job lock at ${where}: ${op} failed: ${displayUri(e?.message ?? String(err))}`;
    const context = { lock: where, operation: op, ...(e?.code ? { dbCode: e.code } : {}) };
    // Unreachable or refused: the run cannot know it is alone, so it does not start (exit 2, retried; 3 for credentials).
    if (isPgAuthError(err)) return new DativoError('AUTH_FAILED', msg, { cause: err, context });
    return new DativoError('STORAGE_IO', msg, { cause: err, context });
  };
  return {
    async acquire(who) {
      const holder: LockHolder = { pid: process.pid, host: hostname(), since: new Date().toISOString(), ...(who.runId ? { runId: who.runId } : {}) };
      const { default: pg } = await import('pg');
      const c: Client = new pg.Client({
        connectionString: pgConnectionString(url),
        connectionTimeoutMillis: 10_000,
        keepAlive: true,
        keepAliveInitialDelayMillis: 10_000,
        application_name: applicationName(holder),
      });
      const lost = new AbortController();
      let released = false;
      c.on('error', (err) => {
        if (released || lost.signal.aborted) return;
        const e = new DativoError('JOB_LOCKED', `lost the job lock: its connection to ${where} broke (${displayUri(err.message)}); the run stops before its next commit`, {
          cause: err,
          context: { lock: where, tenant: ids.tenant, job: ids.job },
        });
        log?.error({ event_type: 'lock_lost', lock: where, err: e }, e.message);
        lost.abort(e);
      });
      try {
        await c.connect();
        // A machine that vanishes without closing its socket: the server ends the session (and frees the lock) within ~1 min.
        await c.query(`SET tcp_keepalives_idle = 30; SET tcp_keepalives_interval = 10; SET tcp_keepalives_count = 3`);
        const res = await c.query('SELECT pg_try_advisory_lock($1::bigint) AS ok', [key]);
        if (!(res.rows[0] as { ok: boolean }).ok) {
          const other = await holderOf(c, key);
          const h = { ...parseApplicationName(other?.application_name ?? ''), since: other?.backend_start };
          const desc = h.pid !== undefined ? `pid ${h.pid} on ${h.host}${h.since ? ` since ${h.since}` : ''}${h.runId ? `, run ${h.runId}` : ''}` : 'another session';
          throw new DativoError('JOB_LOCKED', `another run of this job is running (${desc}); Postgres advisory lock ${key} at ${where}`, {
            context: {
              lock: where,
              key,
              ...(h.pid !== undefined ? { pid: h.pid } : {}),
              ...(h.host !== undefined ? { host: h.host } : {}),
              ...(h.since !== undefined ? { since: h.since } : {}),
              ...(h.runId !== undefined ? { runId: h.runId } : {}),
            },
          });
        }
      } catch (err) {
        released = true;
        await c.end().catch(() => undefined);
        throw failed(err, 'acquire');
      }
      const held: HeldLock = {
        holder,
        signal: lost.signal,
        async release() {
          if (released) return;
          released = true;
          // Ending the session frees the lock; the explicit unlock only makes it immediate where `end` is slow.
          await c.query('SELECT pg_advisory_unlock($1::bigint)', [key]).catch(() => undefined);
          await c.end().catch(() => undefined);
        },
      };
      return held;
    },
  };
}

/** The session holding advisory lock `key` (a bigint lock is classid = high 32 bits, objid = low 32 bits, objsubid 1). */
async function holderOf(c: Client, key: string): Promise<{ application_name: string; backend_start: string } | undefined> {
  const k = BigInt.asUintN(64, BigInt(key));
  const res = await c.query(
    `SELECT a.application_name, to_char(a.backend_start AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS backend_start
       FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
      WHERE l.locktype = 'advisory' AND l.granted AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
        AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid AND l.objsubid = 1`,
    [(k >> 32n).toString(), (k & 0xffffffffn).toString()],
  );
  return res.rows[0] as { application_name: string; backend_start: string } | undefined;
}
