/**
 * The `events` data set many run tests land: a contract of `id` (long,
 * required, the primary key) and `label` (string), and CSV files of its rows.
 */
import { randomBytes } from 'node:crypto';
import { utimes, writeFile } from 'node:fs/promises';

/** The `events` contract's YAML, in `domain`, with `extra` top-level lines (e.g. `dataProduct: clicks`). */
export function eventsAsset(domain: string, extra: readonly string[] = [], version = '1.0'): string {
  return [
    'apiVersion: v3.0.2',
    'kind: DataContract',
    'name: events',
    `version: "${version}"`,
    `domain: ${domain}`,
    'schema:',
    '  - {name: id, type: long, required: true}',
    '  - {name: label, type: string}',
    'primary_key: [id]',
    'team: {owner: data@example.com}',
    ...extra,
    '',
  ].join('\n');
}

/** The CSV text of rows `from..from+count-1` (`id,label`, labels `row <i>`, plus `pad` random hex characters when given). */
export function eventsCsv(from: number, count: number, pad = 0): string {
  const lines = ['id,label'];
  for (let i = from; i < from + count; i++) lines.push(`${i},row ${i}${pad > 0 ? ` ${randomBytes(pad / 2).toString('hex')}` : ''}`);
  return `${lines.join('\n')}\n`;
}

/** Write {@link eventsCsv} to `file`; with `minutesAgo`, set its mtime that far in the past (past a lag). */
export async function writeEventsCsv(file: string, from: number, count: number, opts: { minutesAgo?: number; pad?: number } = {}): Promise<void> {
  await writeFile(file, eventsCsv(from, count, opts.pad));
  if (opts.minutesAgo !== undefined) {
    const t = new Date(Date.now() - opts.minutesAgo * 60_000);
    await utimes(file, t, t);
  }
}
