/** Column types guessed from samples for `dativo discover`: exact forms only. */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import csv from '../../../connectors/csv/index.js';
import { inferTypes } from '../../../connectors/csv/infer.js';
import { silentLogger } from '../../../lib/log.js';
import { generateOrders } from '../../../pipelines/demo/generate-orders.js';
import { makeCsvPlan } from './helpers.js';

const types = (header: string[], rows: (string | null)[][]) => inferTypes(header, rows).map((c) => c.type);

describe('csv type inference', () => {
  it('recognises exact textual forms', () => {
    assert.deepEqual(
      types(
        ['i', 'd', 'b', 'day', 'ts', 's'],
        [
          ['1', '-1.5', 'true', '2024-02-29', '2024-01-01T00:00:00Z', 'x'],
          ['-20', '3', 'FALSE', '2025-12-31', '2024-01-01 10:11:12.123456+05:30', 'y'],
          [null, '', null, '', '2024-01-01T10:11', ''],
        ],
      ),
      ['long', 'decimal(18,1)', 'boolean', 'date', 'timestamp', 'string'],
    );
  });

  it('stays string when in doubt', () => {
    assert.deepEqual(types(['zip'], [['01234'], ['98765']]), ['string'], 'leading zeros');
    assert.deepEqual(types(['f'], [['1e5']]), ['string'], 'exponent');
    assert.deepEqual(types(['d'], [['2024-02-30']]), ['string'], 'no such day');
    assert.deepEqual(types(['mixed'], [['1'], ['a']]), ['string']);
    assert.deepEqual(types(['empty'], [[null], ['']]), ['string']);
    assert.deepEqual(types(['yn'], [['yes'], ['no']]), ['string']);
  });

  it('integers beyond a long become decimal; beyond 38 digits string', () => {
    assert.deepEqual(types(['a'], [['9223372036854775807'], ['-9223372036854775808']]), ['long']);
    assert.deepEqual(types(['a'], [['9223372036854775808']]), ['decimal(19,0)']);
    assert.deepEqual(types(['a'], [['1'.repeat(39)]]), ['string']);
    assert.deepEqual(types(['a'], [['12345678901234567890123.25']]), ['decimal(25,2)']);
  });

  it('discover() types the demo orders like their asset (wider numbers)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'dativo-csv-infer-'));
    try {
      await generateOrders(join(dir, 'orders.csv'), 2000);
      const plan = makeCsvPlan({ dir, files: [{ path: 'orders.csv', object: 'orders' }] });
      const [found] = await csv.discover!(plan, { signal: new AbortController().signal, log: silentLogger() });
      assert.deepEqual(Object.fromEntries(found!.columns.map((c) => [c.name, c.type])), {
        order_id: 'long',
        customer_email: 'string',
        amount: 'decimal(18,2)',
        currency: 'string',
        status: 'string',
        created_at: 'timestamp',
        order_date: 'date',
        note: 'string',
        quantity: 'long',
        is_gift: 'boolean',
      });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
