/**
 * A whole job (CSV → Iceberg) whose target catalog is REST or Nessie, run
 * with `loadJob` + `runJob` against the loopback REST catalog: rows land once
 * per run, the second run is incremental, a lost commit response still ends
 * in a successful run, and the token never reaches the log.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { loadJob } from '../../../lib/config/index.js';
import { createRestCatalog } from '../../../lib/iceberg/rest.js';
import { createLogger } from '../../../lib/log.js';
import { runJob } from '../../../lib/run.js';
import { readIcebergTable } from '../../helpers/iceberg-read.js';
import { startRestCatalog, type RestCatalogServer } from '../../helpers/rest-catalog-server.js';
import { eventsAsset, writeEventsCsv } from '../../helpers/events.js';

const TOKEN = 'rest-job-token-9f8e7d';

let dir: string;
let whDir: string;
let rest: RestCatalogServer;
let nessie: RestCatalogServer;

before(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'dativo-rest-job-'));
  whDir = path.join(dir, 'wh');
  await mkdir(whDir, { recursive: true });
  rest = await startRestCatalog({ warehouse: pathToFileURL(whDir).href, token: TOKEN });
  nessie = await startRestCatalog({ warehouse: pathToFileURL(whDir).href, nessieStyle: true, branches: ['etl'] });
  await writeFile(
    path.join(dir, 'asset.yaml'),
    eventsAsset('restjob'),
  );
});

after(async () => {
  await rest.close();
  await nessie.close();
  await rm(dir, { recursive: true, force: true });
});

async function writeJob(name: string, catalogLines: string[]): Promise<string> {
  await mkdir(path.join(dir, name, 'data'), { recursive: true });
  const file = path.join(dir, name, 'job.yaml');
  await writeFile(
    file,
    [
      'tenant_id: restjob',
      'source_connector: csv',
      'target_connector: iceberg',
      'asset_path: ../asset.yaml',
      'source:',
      '  files: [{path: "data/*.csv", object: events}]',
      '  incremental: {strategy: file_modified_time}',
      'target:',
      `  warehouse: ${pathToFileURL(whDir).href}`,
      `  table: ${name}`,
      '  catalog:',
      ...catalogLines.map((l) => `    ${l}`),
      'state: {path: state/job.json}',
      'reject_dir: rejects',
      '',
    ].join('\n'),
  );
  return file;
}

async function writeCsv(job: string, name: string, from: number, count: number): Promise<void> {
  await writeEventsCsv(path.join(dir, job, 'data', name), from, count);
}

async function run(jobFile: string, env: Record<string, string> = {}) {
  const lines: string[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(chunk.toString('utf8'));
      cb();
    },
  });
  const plan = await loadJob(jobFile, { env: { ...process.env, ...env }, cwd: path.dirname(jobFile) });
  const summary = await runJob(plan, { log: createLogger({ level: 'debug', destination }) });
  return { summary, log: lines.join('') };
}

async function tableIds(uri: string, table: string, opts: { token?: string; prefix?: string } = {}): Promise<bigint[]> {
  const cat = await createRestCatalog({ type: 'rest', name: 'check', uri, ...opts });
  try {
    const t = await cat.loadTable({ namespace: ['restjob', 'restjob'], name: table });
    assert.ok(t, `table ${table} exists`);
    const rows = await readIcebergTable({ warehouseDir: whDir, location: t.metadata.location, metadataLocation: t.metadataLocation });
    return rows.map((r) => r['id'] as bigint).sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  } finally {
    await cat.close();
  }
}

const range = (from: number, count: number): bigint[] => Array.from({ length: count }, (_, i) => BigInt(from + i));

describe('runJob with a REST catalog', () => {
  test('two incremental runs land every row once; the token is sent but never logged', async () => {
    const job = await writeJob('events_rest', ['type: rest', 'uri: ${REST_URI}', 'token: ${REST_TOKEN}']);
    const env = { REST_URI: rest.uri, REST_TOKEN: TOKEN };
    await writeCsv('events_rest', 'a.csv', 1, 300);
    const r1 = await run(job, env);
    assert.equal(r1.summary.exit_code, 0, JSON.stringify(r1.summary.error));
    await new Promise((r) => setTimeout(r, 20)); // a later mtime for the second file
    await writeCsv('events_rest', 'b.csv', 301, 200);
    const r2 = await run(job, env);
    assert.equal(r2.summary.exit_code, 0, JSON.stringify(r2.summary.error));
    assert.deepEqual(await tableIds(rest.uri, 'events_rest', { token: TOKEN }), range(1, 500));
    assert.ok(rest.requests.every((r) => r.headers.authorization === `Bearer ${TOKEN}`));
    assert.ok(rest.requests.filter((r) => r.op === 'commit' && r.status === 200).length >= 2);
    for (const log of [r1.log, r2.log]) assert.ok(!log.includes(TOKEN), 'token leaked into the job log');
  });

  test('a lost commit response: the run still succeeds and the rows are in the table once', async () => {
    const job = await writeJob('events_lost', ['type: rest', 'uri: ${REST_URI}', 'token: ${REST_TOKEN}']);
    const env = { REST_URI: rest.uri, REST_TOKEN: TOKEN };
    await writeCsv('events_lost', 'a.csv', 1, 100);
    rest.addFault({ op: 'commit', when: 'after', action: { close: true } });
    const r1 = await run(job, env);
    assert.equal(r1.summary.exit_code, 0, JSON.stringify(r1.summary.error));
    assert.deepEqual(await tableIds(rest.uri, 'events_lost', { token: TOKEN }), range(1, 100));
    // the state was saved: a rerun with no new file adds nothing
    const r2 = await run(job, env);
    assert.equal(r2.summary.exit_code, 0);
    assert.deepEqual(await tableIds(rest.uri, 'events_lost', { token: TOKEN }), range(1, 100));
  });

  test('catalog unreachable: the run fails retryable (exit 2)', async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', () => r()));
    const port = (probe.address() as AddressInfo).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const job = await writeJob('events_down', ['type: rest', `uri: http://127.0.0.1:${port}/catalog`]);
    await writeCsv('events_down', 'a.csv', 1, 10);
    const r = await run(job);
    assert.equal(r.summary.exit_code, 2, JSON.stringify(r.summary));
    assert.equal(r.summary.error?.code, 'CATALOG_UNAVAILABLE');
  });
});

describe('runJob with a Nessie catalog', () => {
  test('`type: nessie` with a branch writes to that branch only', async () => {
    const base = nessie.uri.replace(/\/iceberg$/, '');
    const job = await writeJob('events_nessie', ['type: nessie', `uri: ${base}`, 'branch: etl']);
    await writeCsv('events_nessie', 'a.csv', 1, 50);
    const r = await run(job);
    assert.equal(r.summary.exit_code, 0, JSON.stringify(r.summary.error));
    assert.deepEqual(await tableIds(nessie.uri, 'events_nessie', { prefix: 'etl' }), range(1, 50));
    assert.ok(nessie.state.getTable(['restjob', 'restjob'], 'events_nessie', 'etl'));
    assert.equal(nessie.state.getTable(['restjob', 'restjob'], 'events_nessie', 'main'), undefined);
  });
});
