/**
 * Child process for the multi-process commit test (not a test file): commits
 * `count` appends of 5 rows each to the SQLite-catalogued table `db.race`
 * under `<dir>` and prints one JSON line per commit.
 * Usage: node --import tsx commit-worker.ts <dir> <worker> <count> <idOffset>
 */
import { join } from 'node:path';
import { openCatalog } from '../../../lib/iceberg/index.js';
import { commitFiles, ensureTable } from '../../../lib/iceberg/table.js';
import { LocalStorage } from '../../../lib/storage/local.js';
import { DAY_US, dayOf, orderFields, orderRows, writeDataFiles } from './fixtures.js';

const [dir, worker, countText, offsetText] = process.argv.slice(2) as [string, string, string, string];
const storage = new LocalStorage(dir);
const catalog = (await openCatalog({ type: 'sql', name: 'dativo', uri: `sqlite:${join(dir, 'catalog.db')}` }, storage))!;
const ident = { namespace: ['db'], name: 'race' };
const rel = 'db/race';
const ingested = 20419n * DAY_US;
const e = await ensureTable(catalog, ident, { fields: orderFields(), location: storage.uri(rel) });
for (let i = 0; i < Number(countText); i++) {
  const runId = `${worker}-${i}`;
  const from = Number(offsetText) + i * 5;
  const files = await writeDataFiles({ storage, tableRel: rel, fields: e.fields, schema: e.schema, rows: orderRows(from, from + 5, runId, ingested), runId, ingestDay: dayOf(ingested) });
  const res = await commitFiles(catalog, ident, { files, mode: 'append', summary: { 'dativo.run-id': runId }, fields: e.fields, location: storage.uri(rel), storage, maxAttempts: 20 });
  process.stdout.write(JSON.stringify({ runId, snapshotId: res.snapshotId.toString(), seq: res.sequenceNumber.toString(), attempts: res.attempts }) + '\n');
}
await catalog.close();
