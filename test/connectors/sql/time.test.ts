import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dateToSqlDateTime, isoToSqlDateTime, parseDateText, parseTimestampText } from '../../../connectors/sql/time.js';
import { daysFromCivil, parseTimestampMicros } from '../../../lib/records/time.js';

describe('parseTimestampText (driver text → µs since epoch, UTC)', () => {
  it('agrees with the engine’s ISO parser on every form a server sends', () => {
    const cases: [string, string][] = [
      ['2026-11-27 02:43:48.123456+00', '2026-11-27T02:43:48.123456Z'],
      ['2026-11-27 02:43:48+00', '2026-11-27T02:43:48Z'],
      ['2026-11-27 02:43:48.5+00', '2026-11-27T02:43:48.500000Z'],
      ['1969-07-20 20:17:40.000001+00', '1969-07-20T20:17:40.000001Z'],
      ['1969-12-31 23:59:59.999999+00', '1969-12-31T23:59:59.999999Z'],
      ['2026-11-27 08:13:48.123456+05:30', '2026-11-27T02:43:48.123456Z'],
      ['2026-11-26 23:43:48-03', '2026-11-27T02:43:48Z'],
      ['2026-11-27 02:43:48.123456', '2026-11-27T02:43:48.123456Z'],
      ['0001-01-01 00:00:00', '0001-01-01T00:00:00Z'],
      ['9999-12-31 23:59:59.999999', '9999-12-31T23:59:59.999999Z'],
      ['1600-02-29 12:00:00', '1600-02-29T12:00:00Z'],
    ];
    for (const [text, iso] of cases) assert.equal(parseTimestampText(text), parseTimestampMicros(iso), text);
  });

  it('handles offsets with seconds, BC years and more than four year digits', () => {
    assert.equal(parseTimestampText('1900-01-01 00:00:00+00:19:32'), parseTimestampMicros('1899-12-31T23:40:28Z'));
    // 0044-03-15 BC is astronomical year -43.
    assert.equal(parseTimestampText('0044-03-15 12:00:00+00 BC'), BigInt(daysFromCivil(-43, 3, 15)) * 86_400_000_000n + 43_200_000_000n);
    assert.equal(parseTimestampText('10000-01-01 00:00:00+00'), BigInt(daysFromCivil(10000, 1, 1)) * 86_400_000_000n);
  });

  it('returns text it does not understand unchanged, so validate can refuse it', () => {
    for (const s of ['infinity', '-infinity', '0000-00-00 00:00:00', 'garbage', '2026-13-01 00:00:00', '2026-11-27 2:43:48']) {
      assert.equal(parseTimestampText(s), s);
    }
  });
});

describe('parseDateText', () => {
  it('parses dates, BC dates and leaves the rest as text', () => {
    assert.equal(parseDateText('1970-01-01'), 0);
    assert.equal(parseDateText('1969-12-31'), -1);
    assert.equal(parseDateText('2026-11-27'), daysFromCivil(2026, 11, 27));
    assert.equal(parseDateText('0001-01-01 BC'), daysFromCivil(0, 1, 1));
    assert.equal(parseDateText('0000-00-00'), '0000-00-00');
    assert.equal(parseDateText('infinity'), 'infinity');
  });
});

describe('SQL datetime text for bound parameters', () => {
  it('formats ISO cursor values and dates the way MySQL compares them', () => {
    assert.equal(isoToSqlDateTime('2026-11-27T02:43:48.123456Z'), '2026-11-27 02:43:48.123456');
    assert.equal(dateToSqlDateTime(new Date('2026-11-27T02:43:48.123Z')), '2026-11-27 02:43:48.123000');
  });
});
