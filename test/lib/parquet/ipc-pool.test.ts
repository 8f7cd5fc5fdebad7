import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { tableToIPC, Table, tableFromIPC } from 'apache-arrow';
import { buildRecordBatch } from '../../../lib/parquet/arrow.js';
import { inlineEncoder } from '../../../lib/parquet/encoder.js';
import { ipcBytes, pooledIpc, releaseIpcBuffer } from '../../../lib/parquet/ipc-pool.js';
import { workerEncoder } from '../../../lib/parquet/worker-encoder.js';
import { ALL_FIELDS, CONSTANTS, edgeRows } from './fixtures.js';

const batchOf = (rows: number) => buildRecordBatch(ALL_FIELDS, edgeRows(rows), CONSTANTS).batch;

describe('ipcBytes', () => {
  it('writes the bytes tableToIPC writes, in a view of a pooled buffer', () => {
    const batch = batchOf(300);
    const want = tableToIPC(new Table(batch), 'stream');
    const got = ipcBytes(batch);
    assert.deepEqual(Buffer.from(got), Buffer.from(want));
    assert.equal(got.byteOffset, 0);
    assert.ok(got.buffer.byteLength >= got.byteLength);
    assert.ok(pooledIpc(got));
    assert.equal(pooledIpc(want), false);
    assert.equal(tableFromIPC(got).numRows, 300);
  });

  it('reuses a buffer handed back when the next batch fits, and allocates when none does', () => {
    const small = ipcBytes(batchOf(50));
    const buf = small.buffer;
    releaseIpcBuffer(buf);
    const again = ipcBytes(batchOf(40));
    assert.equal(again.buffer, buf, 'the released buffer takes the next batch');
    assert.deepEqual(Buffer.from(again), Buffer.from(tableToIPC(new Table(batchOf(40)), 'stream')));
    releaseIpcBuffer(again.buffer);
    const big = ipcBytes(batchOf(2000));
    assert.notEqual(big.buffer, buf, 'a batch larger than every spare gets a new buffer');
    assert.deepEqual(Buffer.from(big), Buffer.from(tableToIPC(new Table(batchOf(2000)), 'stream')));
  });

  it('pooled batches through the encoder thread give the Parquet bytes of the in-thread encoder', async () => {
    const run = async (make: typeof inlineEncoder): Promise<Buffer> => {
      const out: Buffer[] = [];
      const enc = make({ fields: ALL_FIELDS, rowGroupRows: 700, keyValueMetadata: { k: 'v' } }, (c) => void out.push(Buffer.from(c)));
      for (let i = 0; i < 6; i++) await enc.write(ipcBytes(batchOf(250)));
      await enc.finish();
      return Buffer.concat(out);
    };
    const inline = await run(inlineEncoder);
    const threaded = await run(workerEncoder);
    assert.deepEqual(threaded, inline);
  });
});
