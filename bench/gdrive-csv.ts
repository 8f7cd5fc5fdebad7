/**
 * `gdrive-csv`: one large CSV on the Google fake (test/fakes/google.ts),
 * generated as it is sent (nothing of it is held by the fake), read by
 * the gdrive_csv connector through the real @googleapis/drive client into
 * local Parquet, through the harness's CLI run (the `dativo` process, its
 * peak RSS the kernel's VmHWM).
 *
 *   npm run bench -- gdrive-csv [--rows 200000] [--pad 1000]
 *
 * `--pad` is the width of a filler column: 1,000 bytes make 200,000 rows
 * about 207 MB. Prints MB/s, rows/s, peak RSS against the file's size (the
 * baseline of the JSON line: a reader that held the file would need at
 * least that), and checks the landed rows (DuckDB: count, distinct ids, sum
 * of amounts). Throws when the rows are wrong.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { GoogleFake, generatedCsv } from '../test/fakes/google.js';
import { loadNow, mismatches, readBack, result, runCli, targetKeys, type BenchResult, type CliRun, type CommonOptions } from './harness.js';

/** What the scenario takes besides the common options. */
export interface GdriveOptions {
  /** Width of the filler column, bytes. */
  pad: number;
}

/** A project folder with the fake's key, an asset of the generated columns and the job; returns the job path. */
export async function gdriveBenchJob(dir: string, fake: GoogleFake, folderId: string, key: Record<string, string>, extraTarget: Record<string, unknown> = {}): Promise<string> {
  await mkdir(path.join(dir, 'secrets'), { recursive: true });
  const keyFile = path.join(dir, 'secrets', 'gdrive.json');
  await writeFile(keyFile, JSON.stringify(key));
  await writeFile(
    path.join(dir, 'asset.yaml'),
    [
      'apiVersion: v3.0.2',
      'kind: DataContract',
      'name: generated',
      'version: "1.0"',
      'domain: bench',
      'object: generated',
      'schema:',
      '  - {name: id, type: long, required: true}',
      '  - {name: name, type: string, required: true}',
      '  - {name: amount, type: "decimal(12,2)", required: true}',
      '  - {name: pad, type: string}',
      '',
    ].join('\n'),
  );
  const job = path.join(dir, 'job.yaml');
  await writeFile(
    job,
    [
      'tenant_id: bench',
      'source_connector: gdrive_csv',
      'target_connector: parquet',
      'asset_path: asset.yaml',
      'source:',
      `  folder_id: ${folderId}`,
      '  settle_seconds: 0',
      '  connection:',
      `    base_url: ${fake.url}`,
      '  credentials:',
      `    service_account_file: ${keyFile}`,
      'target:',
      `  warehouse: ${path.join(dir, 'wh')}`,
      ...Object.entries(extraTarget).map(([k, v]) => `  ${k}: ${JSON.stringify(v)}`),
      `state: {path: ${path.join(dir, 'state.json')}}`,
      `reject_dir: ${path.join(dir, 'rejects')}`,
      'schema_validation_mode: strict',
      '',
    ].join('\n'),
  );
  return job;
}

/** Serve `rows` generated rows of width `pad` from a fresh fake; returns it (started), the folder and the file size. */
export async function gdriveBenchFake(rows: number, pad: number): Promise<{ fake: GoogleFake; folderId: string; size: number; key: Record<string, string> }> {
  const fake = new GoogleFake();
  await fake.start();
  const account = fake.serviceAccount('bench@dativo-bench.iam.gserviceaccount.com');
  const folder = fake.addFolder('bench', [account.email]);
  const content = generatedCsv(rows, { pad });
  fake.addFile({ name: 'big.csv', parents: [folder.id], content });
  return { fake, folderId: folder.id, size: content.size, key: account.key };
}

/** The read-back expectations of `rows` generated rows. */
export function gdriveExpected(rows: number): Record<string, string> {
  // amount of row i: (i % 1000) + (i % 100) / 100.
  let cents = 0n;
  for (let i = 0; i < rows; i++) cents += BigInt((i % 1000) * 100 + (i % 100));
  return { rows: String(rows), ids: String(rows), amount: `${cents / 100n}.${String(cents % 100n).padStart(2, '0')}` };
}

export async function benchGdriveCsv(o: CommonOptions, g: GdriveOptions): Promise<BenchResult> {
  const load = loadNow();
  const rows = o.rows ?? 200_000;
  const { fake, folderId, size, key } = await gdriveBenchFake(rows, g.pad);
  const dir = await mkdtemp(path.join(tmpdir(), 'dativo-bench-gdrive-'));
  try {
    const job = await gdriveBenchJob(dir, fake, folderId, key, targetKeys(o));
    const runs: CliRun[] = [];
    for (let i = 0; i < o.repeat; i++) {
      await rm(path.join(dir, 'wh'), { recursive: true, force: true });
      await rm(path.join(dir, 'state.json'), { force: true });
      const r = await runCli(o, job, dir);
      if (r.exit_code !== 0) throw new Error(`gdrive-csv run failed: ${JSON.stringify(r.error)}`);
      runs.push(r);
    }
    const got = await readBack(runs.at(-1)!.files, { rows: 'count(*)', ids: 'count(DISTINCT id)', amount: 'sum(amount)' });
    const wrong = mismatches(got, gdriveExpected(rows));
    if (wrong.length > 0) throw new Error(`gdrive-csv: rows landed wrong: ${wrong.join('; ')}`);
    const mb = size / 1048576;
    const peak = Math.max(...runs.map((r) => r.peak_rss_mb));
    o.log(`  file ${mb.toFixed(1)} MB, ${rows} rows; peak RSS ${peak} MB (${((100 * peak) / mb).toFixed(0)} % of the file)`);
    return result({
      scenario: 'gdrive-csv',
      rows,
      fulls: runs,
      bytes: size,
      baseline: `a reader holding the ${Math.round(mb)} MB file`,
      baselineRun: null,
      options: o,
      load,
      checked: `DuckDB: ${rows} rows, ${rows} distinct ids, sum(amount) ${gdriveExpected(rows)['amount']}`,
      extra: { file_mb: Math.round(mb), peak_rss_pct_of_file: Math.round((100 * peak) / mb) },
    });
  } finally {
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  }
}
