import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { nextFire } from '../../../lib/schedule/trigger.js';

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

describe('nextFire', () => {
  it('cron in a time zone, across the daylight-saving change', () => {
    const t = { kind: 'cron' as const, cron: '0 9 * * *', timezone: 'Europe/Berlin' };
    assert.equal(iso(nextFire(t, Date.parse('2026-03-28T12:00:00Z'))), '2026-03-29T07:00:00.000Z'); // CEST: UTC+2
    assert.equal(iso(nextFire(t, Date.parse('2026-03-27T12:00:00Z'))), '2026-03-28T08:00:00.000Z'); // CET: UTC+1
    assert.equal(iso(nextFire({ kind: 'cron', cron: '0 9 * * *', timezone: 'UTC' }, Date.parse('2026-03-28T12:00:00Z'))), '2026-03-29T09:00:00.000Z');
  });

  it('strictly after the given time', () => {
    const t = { kind: 'cron' as const, cron: '*/15 * * * *', timezone: 'UTC' };
    assert.equal(iso(nextFire(t, Date.parse('2026-01-01T00:15:00Z'))), '2026-01-01T00:30:00.000Z');
  });

  it('intervals on multiples since the epoch, whenever the scheduler started', () => {
    const t = { kind: 'interval' as const, seconds: 300 };
    assert.equal(iso(nextFire(t, Date.parse('2026-01-01T00:03:17Z'))), '2026-01-01T00:05:00.000Z');
    assert.equal(iso(nextFire(t, Date.parse('2026-01-01T00:05:00Z'))), '2026-01-01T00:10:00.000Z');
  });
});
