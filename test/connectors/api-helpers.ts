/**
 * What the API connectors' tests (test/connectors/stripe, test/connectors/
 * hubspot) share: a project folder with the shipped assets copied in and a
 * job on a fake written from a spec, run through `runJobFile` with its log
 * lines read back; and the checks of their bad-input tests, run through the
 * `dativo` CLI as a user runs it. Each connector's `helpers.ts` gives what
 * is its own: the connector, the credential, the incremental block.
 */
import assert from 'node:assert/strict';
import { copyFile, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { RunSummary } from '../../lib/run/types.js';
import type { JobState } from '../../state/index.js';
import { readWarehouseTable } from '../helpers/iceberg-read.js';
import { runLogged } from '../helpers/run-logged.js';
import { project, repo, snapshot, type Project, type Ran } from '../lib/cli/helpers.js';

/** What every API job spec has. */
export interface ApiJob {
  object?: string;
  mode?: 'strict' | 'warn';
  sync?: 'incremental' | 'full_refresh';
  lag?: number;
  /** Extra lines under `source.connection`. */
  connection?: string[];
  /** Extra lines under `source` (e.g. `parallel_windows: 4`). */
  source?: string[];
  /** Extra top-level lines (e.g. retry_config). */
  extra?: string[];
}

/** The connector's own part of a job. */
export interface ApiJobParts {
  /** The flow map of `source.incremental`, e.g. `{strategy: created, cursor_field: created, lag_seconds: 0}`. */
  incremental: string;
  /** Lines under `source.connection` before `base_url`: the credential. */
  credential: string[];
  /** Lines under `source.connection` after `base_url`, before the spec's own. Default none. */
  connection?: string[];
  /** Lines under `source` after the connection block. Default none. */
  source?: string[];
}

/** How a connector's project writes its jobs. */
export interface ApiProjectOptions<Spec extends ApiJob> {
  /** `source_connector`, also the folder under `schemas/` and the table namespace. */
  connector: string;
  /** Shipped assets copied into `assets/` (object names). */
  assets: readonly string[];
  /** The object a spec without `object` reads. */
  defaultObject: string;
  /** The fake's base URL. */
  url: string;
  /** Folder name prefix. */
  prefix: string;
  parts(spec: Spec, object: string): ApiJobParts;
}

/** A project with the connector's assets copied in and a job writer. */
export interface ApiProject<Spec extends ApiJob> extends Project {
  /** Write `job.yaml` from a spec; returns its path. */
  job(spec?: Spec): Promise<string>;
  /** Write and run the job in-process, with its log lines. */
  run(spec?: Spec): Promise<{ summary: RunSummary; logs: Record<string, unknown>[] }>;
  /** Rows of an object's Iceberg table. */
  rows(object?: string): Promise<Record<string, unknown>[]>;
  state(): Promise<JobState>;
}

/**
 * A project folder whose job reads one object of a fake into an Iceberg
 * table `<connector>.<object>` of the embedded catalog, with a state file
 * and a reject folder of its own.
 */
export async function apiProject<Spec extends ApiJob>(o: ApiProjectOptions<Spec>): Promise<ApiProject<Spec>> {
  const p = await project(o.prefix);
  for (const f of o.assets) {
    await p.write(`assets/${f}.yaml`, '');
    await copyFile(path.join(repo, `schemas/${o.connector}/v1.0`, `${f}.yaml`), p.p(`assets/${f}.yaml`));
  }
  const job = async (spec: Spec = {} as Spec): Promise<string> => {
    const object = spec.object ?? o.defaultObject;
    const asset = o.assets.includes(object) ? object : o.defaultObject;
    const parts = o.parts(spec, object);
    return p.write(
      'job.yaml',
      [
        'tenant_id: acme',
        `source_connector: ${o.connector}`,
        'target_connector: iceberg',
        `asset_path: assets/${asset}.yaml`,
        'source:',
        `  objects: [${object}]`,
        ...(spec.source ?? []).map((l) => `  ${l}`),
        ...(spec.sync === 'full_refresh' ? [] : [`  incremental: ${parts.incremental}`]),
        '  connection:',
        ...parts.credential.map((l) => `    ${l}`),
        `    base_url: ${o.url}`,
        ...(parts.connection ?? []).map((l) => `    ${l}`),
        ...(spec.connection ?? []).map((l) => `    ${l}`),
        ...(parts.source ?? []).map((l) => `  ${l}`),
        ...(spec.sync === 'full_refresh' ? ['sync_mode: full_refresh'] : []),
        ...targetLines({ namespace: o.connector, table: object, mode: spec.mode }),
        ...(spec.extra ?? []),
        '',
      ].join('\n'),
    );
  };
  return {
    ...p,
    job,
    run: async (spec?: Spec) => runLogged(await job(spec), { cwd: p.dir }),
    rows: (object = o.defaultObject) => readWarehouseTable(p.p('wh'), o.connector, object),
    state: async () => JSON.parse(await readFile(p.p('state.json'), 'utf8')) as JobState,
  };
}

/**
 * The lines of a test job after its `source` block: an Iceberg table
 * `<namespace>.<table>` under `wh/` of the embedded catalog, the job's own
 * state file and reject folder, and the validation mode (default strict).
 */
export function targetLines(o: { namespace: string; table: string; mode?: 'strict' | 'warn' | undefined }): string[] {
  return ['target:', '  warehouse: wh', `  namespace: ${o.namespace}`, `  table: ${o.table}`, 'state: {path: state.json}', 'reject_dir: rejects', `schema_validation_mode: ${o.mode ?? 'strict'}`];
}

/** Rows grouped by id. */
export function byId(rows: Record<string, unknown>[]): Map<string, Record<string, unknown>[]> {
  const m = new Map<string, Record<string, unknown>[]>();
  for (const r of rows) m.set(r['id'] as string, [...(m.get(r['id'] as string) ?? []), r]);
  return m;
}

/** Output of a CLI run, stdout then stderr. */
const out = (r: Ran): string => r.stdout + r.stderr;

/**
 * A refused credential: exit 3, AUTH_FAILED naming the connector and object
 * (`what`, e.g. `stripe customers`) and the credential's config key, never
 * the credential nor its tail after the prefix the API shows.
 */
export function assertAuthFailed(r: Ran, o: { what: string; key: string; secret: string; secretTail: string }): void {
  assert.equal(r.code, 3, r.stderr);
  assert.match(out(r), /AUTH_FAILED/);
  assert.ok(out(r).includes(o.what), `${o.what} in ${out(r)}`);
  assert.ok(out(r).includes(o.key), `${o.key} in ${out(r)}`);
  assert.ok(!out(r).includes(o.secret), 'the credential is never printed');
  assert.ok(!out(r).includes(o.secretTail), 'not even most of it');
}

/**
 * An object name the connector does not have: exit 3 at `dativo validate`
 * and at `dativo run`, with the message listing the valid ones (`valid`),
 * and no request made (`requests()` counts the fake's).
 */
export async function assertUnknownObject(cli: (args?: string[]) => Promise<Ran>, valid: RegExp, requests: () => number): Promise<void> {
  const before = requests();
  const v = await cli(['validate', 'job.yaml']);
  assert.equal(v.code, 3, v.stderr);
  assert.match(v.stderr, valid);
  const r = await cli();
  assert.equal(r.code, 3, r.stderr);
  assert.match(out(r), valid);
  assert.equal(requests(), before, 'no request was made');
}

/** Bad options: exit 3 at `dativo validate`, every key named, the credential never printed. */
export async function assertBadOptions(cli: (args?: string[]) => Promise<Ran>, keys: readonly string[], secret: string): Promise<void> {
  const v = await cli(['validate', 'job.yaml']);
  assert.equal(v.code, 3, v.stderr);
  for (const k of keys) assert.ok(v.stderr.includes(k), `${k} in ${v.stderr}`);
  assert.ok(!v.stderr.includes(secret));
}

/**
 * A record of the fake missing fields the asset requires (the test told the
 * fake to omit `fields` from object `victim`): `strict` stops with the
 * object's id (exit 3) and lands nothing; `warn` (exit 1) lands the other
 * `landed` rows and writes, in each run's reject file, one line naming the
 * object's id and the fields.
 */
export async function assertMissingFieldsRejected<Spec extends ApiJob>(
  p: ApiProject<Spec>,
  cli: (args?: string[]) => Promise<Ran>,
  o: { victim: string; fields: readonly string[]; landed: number },
): Promise<void> {
  const snap = await snapshot(p.p('wh'));
  await p.job({ mode: 'strict' } as Spec);
  const strict = await cli();
  assert.equal(strict.code, 3, out(strict));
  assert.match(out(strict), new RegExp(`VALIDATION_FAILED.*id ${o.victim}`));
  assert.deepEqual(await snapshot(p.p('wh')), snap, 'strict: nothing landed');

  await p.job({ mode: 'warn' } as Spec);
  const warn = await cli();
  assert.equal(warn.code, 1, warn.stderr);
  assert.equal((await p.rows()).length, o.landed);
  const files = (await readdir(p.p('rejects'), { recursive: true })).filter((f) => f.endsWith('.ndjson') || f.endsWith('.jsonl'));
  assert.equal(files.length, 2, 'one reject file per run');
  for (const f of files) {
    const lines = (await readFile(p.p(`rejects/${f}`), 'utf8')).trim().split('\n');
    assert.equal(lines.length, 1);
    const reject = JSON.parse(lines[0]!) as Record<string, unknown>;
    assert.equal((reject['location'] as Record<string, unknown>)['id'], o.victim, 'the reject names the object id');
    assert.deepEqual([...(reject['fields'] as string[])].sort(), [...o.fields].sort());
  }
}

/** Files of `dir` that `keep` selects and that differ from `snap` (a {@link snapshot} of it): none, or the assertion fails naming them. */
export async function assertUnchanged(dir: string, snap: Record<string, string>, keep: (file: string) => boolean): Promise<void> {
  const now = await snapshot(dir);
  for (const f of Object.keys({ ...now, ...snap })) if (keep(f)) assert.equal(now[f], snap[f], `${f} unchanged`);
}
