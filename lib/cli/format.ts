/** Human-readable CLI output. */
import type { ReplaySummary } from '../replay.js';
import type { Progress, RunSummary } from '../run.js';

const n = (x: number): string => x.toLocaleString('en-US');

/** `1536` → `1.5 KiB`. */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** One live progress line: rows, rows/s, Parquet bytes written, rejects. */
export function formatProgress(p: Progress): string {
  const secs = Math.max(p.elapsedMs / 1000, 0.001);
  return (
    `${p.object}: ${n(p.rowsRead)} rows read, ${n(Math.round(p.rowsRead / secs))} rows/s` +
    (p.bytesWritten !== undefined ? `, ${formatBytes(p.bytesWritten)} written` : '') +
    (p.rowsRejected > 0 ? `, ${n(p.rowsRejected)} rejected` : '')
  );
}

/** The end-of-run summary printed on stdout (without --json). */
export function formatSummary(s: RunSummary): string {
  const lines = [`run ${s.run_id} of ${s.tenant}/${s.job}: exit ${s.exit_code} in ${s.seconds.toFixed(1)} s`];
  for (const o of s.objects) {
    lines.push(
      `  ${o.name}: ${n(o.rows_read)} read, ${n(o.rows_written)} written, ${n(o.rows_rejected)} rejected, ${o.files.length} file(s)` +
        (o.cursor ? `, cursor ${o.cursor.field}=${o.cursor.value}` : '') +
        (o.snapshot_id ? `, snapshot ${o.snapshot_id}` : '') +
        (o.api_calls ? `, ${n(o.api_calls)} API call(s)` : ''),
    );
    if (o.reject_file) lines.push(`    rejects: ${o.reject_file}`);
    if (o.error) lines.push(`    error [${o.error.code}]: ${o.error.message}`);
  }
  if (s.error && s.objects.length === 0) lines.push(`  error [${s.error.code}]: ${s.error.message}`);
  return `${lines.join('\n')}\n`;
}

/** The summary of `dativo rejects replay` (without --json). */
export function formatReplay(s: ReplaySummary): string {
  const lines = [`replay ${s.run_id} of ${s.tenant}/${s.job}: exit ${s.exit_code} in ${s.seconds.toFixed(1)} s`];
  if (s.objects.length === 0 && !s.error) lines.push('  no reject files to replay');
  for (const o of s.objects) {
    lines.push(
      `  ${o.name}: ${o.reject_files.length} reject file(s), ${n(o.rows_read)} row(s): ${n(o.rows_written)} landed, ${n(o.rows_rejected)} still rejected` +
        (o.snapshot_id ? `, snapshot ${o.snapshot_id}` : ''),
    );
    for (const f of o.finished ?? []) lines.push(`    finished an interrupted replay of ${f}`);
    if (o.reject_file) lines.push(`    still rejected: ${o.reject_file}`);
    if (o.error) lines.push(`    error [${o.error.code}]: ${o.error.message}`);
  }
  if (s.error && s.objects.length === 0) lines.push(`  error [${s.error.code}]: ${s.error.message}`);
  return `${lines.join('\n')}\n`;
}
