/** Unformatted cells converted per the asset (connectors/google_sheets/convert.ts). */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { convertCell, serialToDays, serialToWallMicros, wallToUtcMicros, zoneOffset, type ZoneOffset } from '../../../connectors/google_sheets/convert.js';
import { formatTimestampMicros, parseTimestampMicros } from '../../../lib/records/time.js';
import { serialOf } from '../../fakes/sheets.js';

const utc: ZoneOffset = () => 0;
const micros = (iso: string): bigint => parseTimestampMicros(iso) as bigint;

it('serial day numbers: the 1899-12-30 epoch, 1900 is not a leap year; a time of day is refused', () => {
  assert.equal(serialToDays(25_569), 0);
  assert.equal(serialToDays(1), -25_568);
  assert.equal(serialToDays(61), -25_508, '1900-03-01');
  assert.equal(serialToDays(46_110), 20_541, '2026-03-29');
  assert.match(String(serialToDays(46_110.5)), /time of day/);
});

it('serial date-times to µs exactly, for every µs of a day sampled across years', () => {
  assert.equal(serialToWallMicros(2.5), micros('1900-01-01T12:00:00Z'));
  assert.equal(serialToWallMicros(33.625), micros('1900-02-01T15:00:00Z'));
  const samples = ['1970-01-01T00:00:00.000001', '2000-02-29T23:59:59.999999', '2026-11-30T09:41:07.123456', '2038-01-19T03:14:07.654321', '2079-06-06T23:59:59.999999', '1905-05-05T05:05:05.500005'];
  for (const s of samples) assert.equal(formatTimestampMicros(serialToWallMicros(serialOf(s))), `${s}Z`, s);
  // A spread of µs values through one day.
  for (let us = 0n; us < 86_400_000_000n; us += 86_400_000_000n / 997n + 13n) {
    const iso = formatTimestampMicros(micros('2026-06-15T00:00:00Z') + us).slice(0, -1);
    assert.equal(formatTimestampMicros(serialToWallMicros(serialOf(iso))), `${iso}Z`);
  }
});

it('wall-clock times in a zone to UTC: offsets, DST gaps and overlaps, fixed offsets', () => {
  const berlin = zoneOffset('Europe/Berlin') as ZoneOffset;
  assert.equal(typeof berlin, 'function');
  const at = (wall: string, z: ZoneOffset): string => formatTimestampMicros(wallToUtcMicros(micros(`${wall}Z`), z));
  assert.equal(at('2026-01-15T12:00:00.000001', berlin), '2026-01-15T11:00:00.000001Z');
  assert.equal(at('2026-07-15T12:00:00', berlin), '2026-07-15T10:00:00.000000Z');
  // 02:30 does not exist on 2026-03-29 in Berlin: read with the offset before the change (+01:00).
  assert.equal(at('2026-03-29T02:30:00', berlin), '2026-03-29T01:30:00.000000Z');
  // 02:30 occurs twice on 2026-10-25: the earlier instant (+02:00).
  assert.equal(at('2026-10-25T02:30:00', berlin), '2026-10-25T00:30:00.000000Z');
  assert.equal(at('2026-01-15T12:00:00', zoneOffset('GMT+05:30') as ZoneOffset), '2026-01-15T06:30:00.000000Z');
  assert.equal(at('2026-01-15T12:00:00', zoneOffset('-07:00') as ZoneOffset), '2026-01-15T19:00:00.000000Z');
  assert.equal(at('2026-01-15T12:00:00', zoneOffset('Etc/GMT') as ZoneOffset), '2026-01-15T12:00:00.000000Z');
  assert.match(String(zoneOffset('Mars/Olympus')), /unknown time zone/);
});

it('converts cells per column type; errors and fractions are refused, the rest goes on to validate', () => {
  const date = { kind: 'date' } as const;
  const ts = { kind: 'timestamp' } as const;
  assert.deepEqual(convertCell(46_110, date, utc), { ok: true, value: 20_541 });
  assert.deepEqual(convertCell('2026-03-29', date, utc), { ok: true, value: '2026-03-29' }, 'text is parsed by validate');
  assert.equal(convertCell(46_110.25, date, utc).ok, false);
  assert.deepEqual(convertCell(46_110.25, ts, utc), { ok: true, value: micros('2026-03-29T06:00:00Z') });
  assert.deepEqual(convertCell(0.1, { kind: 'decimal', precision: 12, scale: 2 }, utc), { ok: true, value: 0.1 });
  assert.deepEqual(convertCell('#N/A', { kind: 'long' }, utc), { ok: false, code: 'type', message: 'the cell holds the error value #N/A' });
  assert.deepEqual(convertCell('#N/A', { kind: 'string' }, utc), { ok: true, value: '#N/A' }, 'a string column keeps the text');
  assert.deepEqual(convertCell(true, { kind: 'boolean' }, utc), { ok: true, value: true });
});
