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

  it('lists every bad option at once', () => {
    assert.throws(
      () => parseCsvOptions({ engine: { options: { native: { delimiter: '\n', encoding: 'utf16', header: false, chunk_size: 0 } } } }, '/jobs/x.yaml'),
      (err: unknown) => {
        assert.ok(err instanceof DativoError);
        assert.equal(err.code, 'CONFIG_INVALID');
        assert.deepEqual(
          err.problems.map((p) => p.key.split('.').pop()),
          ['delimiter', 'encoding', 'header', 'chunk_size'],
        );
        assert.ok(err.problems.every((p) => p.file === '/jobs/x.yaml'));
        return true;
      },
    );
  });
});
