import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatBytes, formatProgress, formatSummary } from '../../../lib/cli/format.js';

describe('CLI formatting', () => {
  it('formatBytes uses binary units with one decimal', () => {
    assert.equal(formatBytes(0), '0 B');
    assert.equal(formatBytes(1023), '1023 B');
    assert.equal(formatBytes(1536), '1.5 KiB');
    assert.equal(formatBytes(5 * 1024 * 1024), '5.0 MiB');
  });

  it('formatProgress: rows, rows/s, bytes, and rejects only when there are some', () => {
    assert.equal(
      formatProgress({ object: 'orders', rowsRead: 120_000, rowsWritten: 119_000, rowsRejected: 0, bytesWritten: 3 * 1024 * 1024, elapsedMs: 2000 }),
      'orders: 120,000 rows read, 60,000 rows/s, 3.0 MiB written',
    );
    assert.equal(
      formatProgress({ object: 'o', rowsRead: 10, rowsWritten: 7, rowsRejected: 3, elapsedMs: 0 }),
      'o: 10 rows read, 10,000 rows/s, 3 rejected',
    );
  });

  it('formatSummary lists objects, rejects and errors', () => {
    const text = formatSummary({
      run_id: 'r1',
      exit_code: 1,
      job: 'job',
      tenant: 't',
      started_at: '2026-01-01T00:00:00.000Z',
      seconds: 1.2,
      objects: [
        { name: 'a', rows_read: 1200, rows_written: 1100, rows_rejected: 100, files: ['f1'], reject_file: '/r/a/r1.ndjson' },
        { name: 'b', rows_read: 0, rows_written: 0, rows_rejected: 0, files: [], api_calls: 3, error: { code: 'SOURCE_NOT_FOUND', message: 'no such table' } },
      ],
    });
    assert.equal(
      text,
      [
        'run r1 of t/job: exit 1 in 1.2 s',
        '  a: 1,200 read, 1,100 written, 100 rejected, 1 file(s)',
        '    rejects: /r/a/r1.ndjson',
        '  b: 0 read, 0 written, 0 rejected, 0 file(s), 3 API call(s)',
        '    error [SOURCE_NOT_FOUND]: no such table',
        '',
      ].join('\n'),
    );
  });
});
