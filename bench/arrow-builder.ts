/**
 * The Arrow column builders alone (lib/parquet/arrow.ts): N canonical demo
 * orders (bench/generator-source.ts, made up front) appended into a
 * RecordBatchBuilder, a batch built every 10,000 rows; best of `--repeat`
 * runs, CPU seconds of this thread. For before/after comparisons of the
 * builders themselves, without parsing, validation or Parquet.
 *
 *   node --import tsx bench/arrow-builder.ts [--rows 1000000] [--repeat 5]
 */
import { parseArgs } from 'node:util';
import { loadAsset } from '../lib/config/asset.js';
import { RecordBatchBuilder } from '../lib/parquet/arrow.js';
import { orderRow } from './generator-source.js';
import { ROOT } from './harness.js';

const { values } = parseArgs({ options: { rows: { type: 'string', default: '1000000' }, repeat: { type: 'string', default: '5' } } });
const rows = Number(values.rows);
const asset = await loadAsset(`${ROOT}/schemas/demo/v1.0/orders.yaml`);
const data = Array.from({ length: rows }, (_, i) => orderRow(i));
const runs: number[] = [];
let bytes = 0;
for (let r = 0; r < Number(values.repeat); r++) {
  const b = new RecordBatchBuilder(asset.fields, {}, undefined, 10_000, true);
  const c0 = process.cpuUsage();
  bytes = 0;
  for (let i = 0; i < rows; i++) {
    b.append(data[i]!);
    if (b.length === 10_000) bytes += b.build().byteLength;
  }
  if (b.length > 0) bytes += b.build().byteLength;
  const c = process.cpuUsage(c0);
  runs.push((c.user + c.system) / 1e6);
}
const best = Math.min(...runs);
process.stdout.write(JSON.stringify({ bench: 'arrow-builder', rows, best_cpu_seconds: Number(best.toFixed(3)), rows_per_cpu_s: Math.round(rows / best), runs: runs.map((x) => Number(x.toFixed(3))), arrow_bytes: bytes }) + '\n');
