/**
 * The example tap jobs run as docs/connectors/singer.md and airbyte.md
 * say: pipelines/examples/singer_countries.yaml and airbyte_countries.yaml
 * (their small Node taps shipped in pipelines/examples/taps/) land the
 * countries in Iceberg exactly, and a second run after a row was appended
 * to the data file lands only that row.
 */
import assert from 'node:assert/strict';
import { appendFile, copyFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { parse } from 'yaml';
import { getConnector } from '../../connectors/index.js';
import { loadJob } from '../../lib/config/index.js';
import { discoverAssetYaml } from '../../lib/discover.js';
import { runJobFile } from '../../lib/index.js';
import { readWarehouseTable } from '../helpers/iceberg-read.js';

const examples = path.resolve(import.meta.dirname, '../../pipelines/examples');
let out: string;
before(async () => {
  out = await mkdtemp(path.join(tmpdir(), 'dativo-tap-examples-'));
});
after(() => rm(out, { recursive: true, force: true }));

for (const job of ['singer_countries', 'airbyte_countries']) {
  test(`${job}.yaml: every country once, exact; the next run only the appended one`, async () => {
    const dir = path.join(out, job);
    const data = path.join(out, `${job}.ndjson`);
    await copyFile(path.join(examples, 'data/countries.ndjson'), data);
    const env = { ...process.env, EXAMPLES_WAREHOUSE: path.join(dir, 'wh'), DATIVO_STATE_DIR: path.join(dir, 'state'), DATIVO_REJECT_DIR: path.join(dir, 'rejects'), COUNTRIES_FILE: data };
    const first = await runJobFile(path.join(examples, `${job}.yaml`), { env });
    assert.equal(first.exit_code, 0, JSON.stringify(first));
    assert.equal(first.objects[0]?.rows_written, 5);

    await appendFile(data, '{"code":"UY","name":"Uruguay","population":3423108,"updated_at":"2026-01-06T00:00:00.000006Z"}\n');
    const second = await runJobFile(path.join(examples, `${job}.yaml`), { env });
    assert.equal(second.exit_code, 0, JSON.stringify(second));
    assert.equal(second.objects[0]?.rows_written, 1);

    const rows = await readWarehouseTable(path.join(dir, 'wh'), 'examples.examples', 'countries');
    assert.deepEqual(rows.map((r) => r['code']).sort(), ['BR', 'DE', 'IS', 'JP', 'NZ', 'UY']);
    const jp = rows.find((r) => r['code'] === 'JP')!;
    assert.equal(jp['name'], '日本');
    assert.equal(jp['population'], 124516650n);
  });
}

test('dativo discover writes the asset from the tap\'s --discover and the source\'s discover output', async () => {
  for (const [job, type] of [['singer_countries', 'singer'], ['airbyte_countries', 'airbyte']] as const) {
    // What `dativo discover <job>` prints (lib/cli/commands.ts), in-process.
    const plan = await loadJob(path.join(examples, `${job}.yaml`), { purpose: 'discover' });
    const yaml = await discoverAssetYaml(plan, await getConnector(plan.source.type), new AbortController().signal);
    const asset = parse(yaml) as { source_type: string; object: string; schema: { name: string; type: string; required: boolean }[]; primary_key: string[] };
    assert.equal(asset.source_type, type);
    assert.equal(asset.object, 'countries');
    assert.deepEqual(asset.schema.map((c) => [c.name, c.type, c.required]), [['code', 'string', true], ['name', 'string', false], ['population', 'long', false], ['updated_at', 'timestamp', false]]);
    assert.deepEqual(asset.primary_key, ['code']);
  }
});
