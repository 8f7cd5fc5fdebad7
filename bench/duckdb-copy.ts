/**
 * The `csv-parquet` baseline, in its own process so that its CPU and peak RSS
 * are its own: DuckDB (@duckdb/node-api, its default threads) converts the
 * CSV file to one Parquet file with the demo asset's types.
 *
 *   node --import tsx bench/duckdb-copy.ts --csv <file> --out <file.parquet> [--compression zstd]
 *
 * Prints one JSON line: `{seconds, cpu_seconds, rows}` of the COPY alone.
 */
import { parseArgs } from 'node:util';
import { withDuckDb } from './harness.js';

/** DuckDB's column types for the demo orders (schemas/demo/v1.0/orders.yaml). */
export const ORDER_COLUMN_TYPES: Record<string, string> = {
  order_id: 'BIGINT',
  customer_email: 'VARCHAR',
  amount: 'DECIMAL(12,2)',
  currency: 'VARCHAR',
  status: 'VARCHAR',
  created_at: 'TIMESTAMPTZ',
  order_date: 'DATE',
  note: 'VARCHAR',
  quantity: 'INTEGER',
  is_gift: 'BOOLEAN',
};

const quote = (s: string): string => `'${s.replaceAll("'", "''")}'`;

async function main(): Promise<void> {
  const { values } = parseArgs({ options: { csv: { type: 'string' }, out: { type: 'string' }, compression: { type: 'string', default: 'zstd' } } });
  if (!values.csv || !values.out) throw new Error('--csv and --out are required');
  const columns = `{${Object.entries(ORDER_COLUMN_TYPES)
    .map(([k, t]) => `${quote(k)}: ${quote(t)}`)
    .join(', ')}}`;
  const sql = `COPY (SELECT * FROM read_csv(${quote(values.csv)}, header = true, columns = ${columns})) TO ${quote(values.out)} (FORMAT parquet, COMPRESSION ${values.compression})`;
  const out = await withDuckDb(async (conn) => {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    const r = await conn.run(sql);
    const cpu = process.cpuUsage(c0);
    return { seconds: (performance.now() - t0) / 1000, cpu_seconds: (cpu.user + cpu.system) / 1e6, rows: Number(r.rowsChanged) };
  });
  process.stdout.write(JSON.stringify(out) + '\n');
}

await main();
