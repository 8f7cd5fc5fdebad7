/**
 * A throw-away project for the tap tests: an asset matching the fake taps'
 * records (test/fakes/tap-data.mjs), a job file per test naming the fake
 * Singer tap or Airbyte source, its own state, reject folder and warehouse,
 * and a probe of what the taps it ran still hold (live processes, private
 * temp folders).
 */
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { stringify } from 'yaml';
import { loadJob } from '../../../lib/config/index.js';
import type { RunSummary } from '../../../lib/run.js';
import { readWarehouseTable } from '../../helpers/iceberg-read.js';
import { runLogged } from '../../helpers/run-logged.js';
import type { JobPlan } from '../../../lib/plan.js';
import type { Row } from '../../../lib/types.js';

export const fakes = path.resolve(import.meta.dirname, '../../fakes');
export const SINGER_TAP = path.join(fakes, 'singer-tap.mjs');
export const AIRBYTE_SOURCE = path.join(fakes, 'airbyte-source.mjs');

export const ASSET_YAML = [
  'apiVersion: v3.0.2',
  'kind: DataContract',
  'name: customers',
  'version: "1.0"',
  'domain: taps',
  'schema:',
  '  - {name: id, type: long, required: true}',
  '  - {name: name, type: string}',
  '  - {name: updated_at, type: timestamp, required: true}',
  '  - {name: big, type: long}',
  '  - {name: amount, type: "decimal(12,2)"}',
  'primary_key: [id]',
  'team: {owner: data@example.com}',
  '',
].join('\n');

export type Protocol = 'singer' | 'airbyte';

/** What a fake tap recorded about itself (test/fakes/tap-data.mjs `register`). */
export interface TapSeen {
  pid: number;
  dir: string;
  dirMode: number;
  configMode: number;
  argv: string[];
}

export interface TapProject {
  dir: string;
  registry: string;
  /** Write `<name>.yaml` (a job on the fake tap of `protocol`) and return its path. */
  job(name: string, o: { protocol: Protocol; config: Record<string, unknown>; objects?: string[]; source?: Record<string, unknown>; job?: Record<string, unknown> }): Promise<string>;
  plan(file: string): Promise<JobPlan>;
  /** Every tap process started from this project so far. */
  seen(): Promise<TapSeen[]>;
  /** Taps started from this project still running, or whose private folder still exists. */
  resourcesOpen(): Promise<number>;
  cleanup(): Promise<void>;
}

export async function tapProject(prefix: string): Promise<TapProject> {
  const dir = await mkdtemp(path.join(tmpdir(), `dativo-${prefix}-`));
  const registry = path.join(dir, 'registry');
  await mkdir(registry);
  await writeFile(path.join(dir, 'asset.yaml'), ASSET_YAML);
  return {
    dir,
    registry,
    async job(name, o) {
      const file = path.join(dir, `${name}.yaml`);
      const doc = {
        tenant_id: 'taps',
        source_connector: o.protocol,
        target_connector: 'iceberg',
        asset_path: 'asset.yaml',
        source: {
          command: ['node', o.protocol === 'singer' ? SINGER_TAP : AIRBYTE_SOURCE],
          objects: o.objects ?? ['customers'],
          // A key set to undefined is left out (a config missing it).
          config: Object.fromEntries(Object.entries({ api_key: 'k', registry, ...o.config }).filter(([, v]) => v !== undefined)),
          incremental: { strategy: 'source_state' },
          ...o.source,
        },
        target: { warehouse: `wh-${name}` },
        state: { path: `state/${name}.json` },
        reject_dir: `rejects-${name}`,
        schema_validation_mode: 'warn',
        ...o.job,
      };
      await writeFile(file, stringify(doc));
      return file;
    },
    plan: (file) => loadJob(file),
    async seen() {
      const out: TapSeen[] = [];
      for (const pid of await readdir(registry)) out.push({ pid: Number(pid), ...(JSON.parse(await readFile(path.join(registry, pid), 'utf8')) as Omit<TapSeen, 'pid'>) });
      return out;
    },
    async resourcesOpen() {
      let n = 0;
      for (const pid of await readdir(registry)) {
        const tmp = (JSON.parse(await readFile(path.join(registry, pid), 'utf8')) as TapSeen).dir;
        let alive = true;
        try {
          process.kill(Number(pid), 0);
        } catch {
          alive = false;
        }
        if (alive || existsSync(tmp)) n++;
      }
      return n;
    },
    cleanup: () => rm(dir, { recursive: true, force: true }),
  };
}

const TWO_53 = 9007199254740992n;

/** A fake tap's record `id` of `stream`, as the connector emits it (big integers as bigint). */
export function fakeRecord(stream: string, id: number): Row {
  return {
    id,
    name: `${stream} ${id} ü`,
    updated_at: new Date(Date.UTC(2026, 0, 1) + id * 1000).toISOString().replace('Z', '123Z'),
    big: TWO_53 + BigInt(id),
    amount: `${id}.50`,
  };
}

export const range = (from: number, to: number): number[] => Array.from({ length: to - from + 1 }, (_, i) => from + i);

/** What {@link runTapJob} returns: the run's summary and every log line it wrote. */
export interface TapRun {
  summary: RunSummary;
  logs: string;
}

/** Run a job file in-process as `dativo run` does ({@link runLogged}); its log as JSON lines of text. */
export async function runTapJob(file: string, opts: { env?: NodeJS.ProcessEnv } = {}): Promise<TapRun> {
  const { summary, logs } = await runLogged(file, opts);
  return { summary, logs: logs.map((l) => JSON.stringify(l)).join('\n') };
}

/** The table's rows as `<stream> <id>` (the `name` column without its suffix), sorted. */
export async function tableKeys(dir: string, name: string): Promise<string[]> {
  const rows = await readWarehouseTable(path.join(dir, `wh-${name}`), 'taps.taps', 'customers').catch((err: unknown) => {
    if (/not found|does not exist|no such/i.test(String(err))) return [];
    throw err;
  });
  return rows.map((r) => String(r['name']).replace(/ ü$/, '')).sort();
}

/** `<stream> <id>` for ids `from..to`, sorted as {@link tableKeys} sorts. */
export const keys = (stream: string, from: number, to: number): string[] => range(from, to).map((id) => `${stream} ${id}`).sort();
