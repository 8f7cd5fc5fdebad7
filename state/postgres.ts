/**
 * The Postgres state store (`state: {kind: postgres, url, table}`): the state
 * many machines share. One row per (tenant, job) holding exactly the document
 * the file store writes, as text (not jsonb: the bytes read back are the bytes
 * written, and the same {@link parseState} judges them), so the same rules
 * hold: a row that cannot be trusted (not JSON, wrong shape, unknown version,
 * another job's state) is `STATE_CORRUPT` naming the row, never an empty
 * state; no row is a first run.
 *
 * Every write is one transaction: `save` an upsert that bumps the row's
 * `generation`; `reset(object)` reads the row `FOR UPDATE`, drops the object
 * and writes it back, so a concurrent save is never lost half-way. Each call
 * opens its own connection and closes it (a run saves once per object), so a
 * store holds nothing between calls. The URL's password never appears in a
 * message ({@link displayUri}).
 */
import type { Client } from 'pg';
import { DativoError, isDativoError } from '../lib/errors.js';
import { displayUri } from '../lib/log.js';
import { isPgAuthError, pgConnectionString } from '../lib/pg-client.js';
import type { PostgresStateSpec } from '../lib/plan.js';
import { emptyState, parseState, stateDocument, stateLocation, type JobState, type StateIds, type StateStore } from './store.js';

/** The table of a `kind: postgres` state without `table`. */
export const DEFAULT_STATE_TABLE = 'dativo_state';

/** `schema.table` → `"schema"."table"` (names are checked lower-case identifiers, see StateSchema). */
function quoteTable(table: string): string {
  return table
    .split('.')
    .map((p) => `"${p.replace(/"/g, '""')}"`)
    .join('.');
}

/** Postgres SQLSTATEs met here. */
const UNDEFINED_TABLE = '42P01';
const INSUFFICIENT_PRIVILEGE = '42501';
const READ_ONLY_TRANSACTION = '25006';
const INVALID_CATALOG_NAME = '3D000';
const INVALID_SCHEMA_NAME = '3F000';

class PostgresStateStore implements StateStore {
  readonly path: string;
  private readonly table: string;
  private readonly location: string;

  constructor(
    private readonly spec: PostgresStateSpec,
    private readonly ids: StateIds,
  ) {
    this.table = quoteTable(spec.table);
    this.location = displayUri(spec.url);
    this.path = stateLocation(spec, ids);
  }

  async load(): Promise<JobState> {
    return this.withClient('load', async (c) => {
      let text: unknown;
      try {
        const res = await c.query(`SELECT document FROM ${this.table} WHERE tenant = $1 AND job = $2`, [this.ids.tenant, this.ids.job]);
        if (res.rows.length === 0) return emptyState(this.ids);
        text = (res.rows[0] as { document: unknown }).document;
      } catch (err) {
        // No table yet: nothing was ever saved here.
        if ((err as { code?: string }).code === UNDEFINED_TABLE) return emptyState(this.ids);
        throw err;
      }
      return parseState(typeof text === 'string' ? text : '', this.path, this.ids, 'state row');
    });
  }

  async checkWritable(): Promise<void> {
    await this.withClient('checkWritable', async (c) => {
      await this.ensureTable(c);
      // A role that may read but not write fails here, before the run writes data.
      const res = await c.query(
        `SELECT has_table_privilege($1, 'INSERT') AND has_table_privilege($1, 'UPDATE') AS ok, pg_is_in_recovery() AS standby`,
        [this.table],
      );
      const row = res.rows[0] as { ok: boolean; standby: boolean };
      if (!row.ok || row.standby) {
        throw new DativoError(
          'STORAGE_NOT_WRITABLE',
          `cannot write the state table ${this.spec.table} at ${this.location}: ${row.standby ? 'the server is a read-only standby' : 'the role may not INSERT and UPDATE it'}`,
          { context: { file: this.path, table: this.spec.table } },
        );
      }
    });
  }

  async save(state: JobState): Promise<void> {
    const text = stateDocument(state, this.ids, this.path);
    await this.withClient('save', async (c) => {
      await this.ensureTable(c);
      await this.transaction(c, () => this.upsert(c, text));
    });
  }

  async reset(object?: string): Promise<void> {
    await this.withClient('reset', async (c) => {
      await this.ensureTable(c);
      await this.transaction(c, async () => {
        if (object === undefined) {
          // Like the file store: the whole job's state is replaced without reading it (the way out of STATE_CORRUPT).
          await this.upsert(c, stateDocument(emptyState(this.ids), this.ids, this.path));
          return;
        }
        const res = await c.query(`SELECT document FROM ${this.table} WHERE tenant = $1 AND job = $2 FOR UPDATE`, [this.ids.tenant, this.ids.job]);
        if (res.rows.length === 0) return;
        const doc = (res.rows[0] as { document: unknown }).document;
        const state = parseState(typeof doc === 'string' ? doc : '', this.path, this.ids, 'state row');
        if (!(object in state.objects)) return;
        delete state.objects[object];
        await this.upsert(c, stateDocument(state, this.ids, this.path));
      });
    });
  }

  private async upsert(c: Client, text: string): Promise<void> {
    await c.query(
      `INSERT INTO ${this.table} (tenant, job, document, generation, updated_at) VALUES ($1, $2, $3, 1, now())
       ON CONFLICT (tenant, job) DO UPDATE SET document = EXCLUDED.document, generation = ${this.table}.generation + 1, updated_at = now()`,
      [this.ids.tenant, this.ids.job, text],
    );
  }

  private async transaction(c: Client, body: () => Promise<void>): Promise<void> {
    await c.query('BEGIN');
    try {
      await body();
      await c.query('COMMIT');
    } catch (err) {
      await c.query('ROLLBACK').catch(() => undefined);
      throw err;
    }
  }

  /**
   * Create the table on first use; two processes creating it at once both go
   * on. Only when it is missing: `CREATE ... IF NOT EXISTS` needs the CREATE
   * privilege on the schema even when the table exists.
   */
  private async ensureTable(c: Client): Promise<void> {
    const found = await c.query('SELECT to_regclass($1) IS NOT NULL AS found', [this.table]);
    if ((found.rows[0] as { found: boolean }).found) return;
    try {
      await c.query(
        `CREATE TABLE IF NOT EXISTS ${this.table} (
          tenant text NOT NULL,
          job text NOT NULL,
          document text NOT NULL,
          generation bigint NOT NULL,
          updated_at timestamptz NOT NULL,
          PRIMARY KEY (tenant, job))`,
      );
    } catch (err) {
      const code = (err as { code?: string }).code;
      // The concurrent CREATE lost the race on the catalog: the table exists now.
      if (code === '23505' || code === '42P07') return;
      throw err;
    }
  }

  private async withClient<T>(op: string, body: (c: Client) => Promise<T>): Promise<T> {
    const { default: pg } = await import('pg');
    const c = new pg.Client({
      connectionString: pgConnectionString(this.spec.url),
      connectionTimeoutMillis: 10_000,
      application_name: 'dativo-state',
    });
    // A connection lost between queries is reported by the next query, not as a crash.
    c.on('error', () => undefined);
    try {
      await c.connect();
      return await body(c);
    } catch (err) {
      throw this.mapError(err, op);
    } finally {
      await c.end().catch(() => undefined);
    }
  }

  private mapError(err: unknown, op: string): DativoError {
    if (isDativoError(err)) return err;
    const e = err as { code?: string; message?: string };
    const msg = `state store ${this.location} (table ${this.spec.table}): ${op} failed: ${displayUri(e?.message ?? String(err))}`;
    const context = { file: this.path, table: this.spec.table, operation: op, ...(e?.code ? { dbCode: e.code } : {}) };
    if (isPgAuthError(err)) return new DativoError('AUTH_FAILED', msg, { cause: err, context });
    if (e?.code === INSUFFICIENT_PRIVILEGE || e?.code === READ_ONLY_TRANSACTION || e?.code === INVALID_CATALOG_NAME || e?.code === INVALID_SCHEMA_NAME) {
      return new DativoError('STORAGE_NOT_WRITABLE', msg, { cause: err, context });
    }
    // Unreachable, connection lost, or anything else the server said: retryable, nothing was written.
    return new DativoError('STORAGE_IO', msg, { cause: err, context });
  }
}

/** The state store of one job in Postgres. Nothing is read or written until a method is called. */
export function postgresStateStore(spec: PostgresStateSpec, ids: StateIds): StateStore {
  return new PostgresStateStore(spec, ids);
}
