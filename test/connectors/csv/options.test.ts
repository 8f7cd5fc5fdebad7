/** CSV options: recipe engine block, Python spellings, every problem listed. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CSV_DEFAULTS, engineOptions, parseCsvOptions } from '../../../connectors/csv/options.js';
import { DativoError } from '../../../lib/errors.js';

describe('csv options', () => {
  it('defaults when nothing is set', () => {
    assert.deepEqual(parseCsvOptions({}), CSV_DEFAULTS);
  });

  it('reads engine.options.native, else engine.options, with the Python spellings', () => {
    const native = { engine: { type: 'native', options: { native: { delimiter: ';', quote_char: "'", encoding: 'UTF-8', chunk_size: '500' } } } };
    assert.deepEqual(parseCsvOptions(native), { ...CSV_DEFAULTS, delimiter: ';', quote: "'", encoding: 'utf8', chunkSize: 500 });
    assert.deepEqual(engineOptions({ engine: { options: { delimiter: '\\t' } } }), { delimiter: '\\t' });
    assert.equal(parseCsvOptions({ engine: { options: { delimiter: '\\t', encoding: 'ISO-8859-1' } } }).delimiter, '\t');
    assert.equal(parseCsvOptions({ default_engine: { options: { native: { encoding: 'latin-1' } } } }).encoding, 'latin1');
  });

  it('source.settle_seconds: seconds, 0 allowed, 5 by default; negative or not a number refused', () => {
    assert.equal(CSV_DEFAULTS.settleSeconds, 5);
    assert.equal(parseCsvOptions({ settle_seconds: 0.25 }).settleSeconds, 0.25);
    assert.equal(parseCsvOptions({ settle_seconds: '30' }).settleSeconds, 30);
    for (const bad of [-1, 'x', true, 1e9]) {
      assert.throws(
        () => parseCsvOptions({ settle_seconds: bad }, '/jobs/x.yaml'),
        (err: unknown) => err instanceof DativoError && err.code === 'CONFIG_INVALID' && err.problems[0]?.key === 'source.settle_seconds',
        String(bad),
      );
    }
  });

  it('lists every bad option at once', () => {
    assert.throws(
      () =>
        parseCsvOptions(
          { settle_seconds: 'soon', engine: { options: { native: { delimiter: '\n', encoding: 'utf16', header: false, chunk_size: 0 } } } },
          '/jobs/x.yaml',
        ),
      (err: unknown) => {
        assert.ok(err instanceof DativoError);
        assert.equal(err.code, 'CONFIG_INVALID');
        assert.deepEqual(
          err.problems.map((p) => p.key.split('.').pop()),
          ['delimiter', 'encoding', 'header', 'chunk_size', 'settle_seconds'],
        );
        assert.ok(err.problems.every((p) => p.file === '/jobs/x.yaml'));
        return true;
      },
    );
  });
});
