/**
 * The demo data: deterministic, written once, and every row valid against
 * the demo asset through the real CSV connector and validate stage.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { getConnector } from '../../../connectors/index.js';
import { loadJob } from '../../../lib/config/job.js';
import { silentLogger } from '../../../lib/log.js';
import { validate } from '../../../lib/stages/validate.js';
import type { Row } from '../../../lib/types.js';
import { DEFAULT_ROWS, centsToDecimal, defaultOrdersPath, generateOrders, mulberry32, parseGenerateArgs } from '../../../pipelines/demo/generate-orders.js';
import { MemoryRejects } from '../../connectors/csv/helpers.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-demo-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha = async (p: string) => createHash('sha256').update(await readFile(p)).digest('hex');

describe('demo orders generator', () => {
  it('is deterministic and never touches an existing file', async () => {
    const a = join(dir, 'a', 'orders.csv');
    const b = join(dir, 'b', 'orders.csv');
    assert.equal(await generateOrders(a, 3000), true);
    assert.equal(await generateOrders(b, 3000), true);
    assert.equal(await sha(a), await sha(b));
    const before = await stat(a);
    await sleep(20);
    assert.equal(await generateOrders(a, 3000, 1), false);
    const afterStat = await stat(a);
    assert.equal(afterStat.mtimeMs, before.mtimeMs);
    assert.equal(afterStat.ino, before.ino);
  });

  it('helpers: exact cents, seeded PRNG', () => {
    assert.deepEqual([centsToDecimal(-5), centsToDecimal(123456), centsToDecimal(0)], ['-0.05', '1234.56', '0.00']);
    const r1 = mulberry32(7);
    const r2 = mulberry32(7);
    for (let i = 0; i < 5; i++) assert.equal(r1(), r2());
  });

  it('100,000 rows that the demo job reads and validates without a reject, covering the edge cases', async () => {
    const file = join(dir, 'full', 'orders.csv');
    await generateOrders(file);
    const plan = await loadJob(join(import.meta.dirname, '../../../pipelines/demo/orders_csv.yaml'));
    assert.equal(plan.tenantId, 'demo');
    assert.equal(plan.source.type, 'csv');
    assert.deepEqual(plan.asset.primaryKey, ['order_id']);
    const object = { name: 'orders', config: { files: [{ path: file, object: 'orders' }] } };
    const rejects = new MemoryRejects();
    const ctx = {
      plan,
      object,
      state: undefined,
      fullRefresh: true,
      runId: 'demo-test',
      runStartedAt: new Date(),
      signal: new AbortController().signal,
      log: silentLogger(),
      rejects,
    };
    const seen = { rows: 0, beyond53: 0, nullNote: 0, emptyNote: 0, negative: 0, multiline: 0, unicode: 0, offsets: new Set<string>(), micros: 0 };
    const raw: Row[] = [];
    const source = (await getConnector('csv')).read(ctx);
    source.on('data', (r: Row) => {
      if (raw.length < 100_000) {
        const t = String(r.created_at);
        seen.offsets.add(t.endsWith('Z') ? 'Z' : t.slice(-6));
        if (/\.\d{6}/.test(t)) seen.micros++;
        if (/[^\x00-\x7f]/.test(String(r.customer_email))) seen.unicode++;
      }
    });
    await pipeline(
      source,
      validate(plan.asset, { mode: 'strict', rejects, object: 'orders' }),
      new Writable({
        objectMode: true,
        write(row: Row, _e, cb) {
          seen.rows++;
          if ((row.order_id as bigint) > 2n ** 53n) seen.beyond53++;
          if (row.note === null) seen.nullNote++;
          if (row.note === '') seen.emptyNote++;
          if (String(row.note).includes('\n')) seen.multiline++;
          if (String(row.amount).startsWith('-')) seen.negative++;
          cb();
        },
      }),
    );
    assert.equal(rejects.count, 0);
    assert.equal(seen.rows, 100_000);
    for (const k of ['beyond53', 'nullNote', 'emptyNote', 'negative', 'multiline', 'unicode', 'micros'] as const) {
      assert.ok(seen[k] > 100, `${k}: ${seen[k]}`);
    }
    assert.deepEqual([...seen.offsets].sort(), ['+01:00', '+05:30', '+09:00', '-03:00', '-08:00', 'Z']);
  });
});

/** Run the generator script as a user does, in `cwd`. */
function runScript(args: string[], cwd: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const script = join(import.meta.dirname, '../../../pipelines/demo/generate-orders.ts');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', import.meta.resolve('tsx'), script, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('demo orders generator: command line', () => {
  it('parses help, positional arguments and errors', () => {
    assert.deepEqual(parseGenerateArgs(['--help']), { kind: 'help' });
    assert.deepEqual(parseGenerateArgs(['out.csv', '-h']), { kind: 'help' });
    assert.deepEqual(parseGenerateArgs([]), { kind: 'generate', path: defaultOrdersPath(), rows: DEFAULT_ROWS });
    assert.deepEqual(parseGenerateArgs(['o.csv', '12']), { kind: 'generate', path: join(process.cwd(), 'o.csv'), rows: 12 });
    assert.deepEqual(parseGenerateArgs(['--', '-odd.csv']), { kind: 'generate', path: join(process.cwd(), '-odd.csv'), rows: DEFAULT_ROWS });
    assert.deepEqual(parseGenerateArgs(['--rows', '5']), { kind: 'error', message: 'unknown option --rows' });
    assert.deepEqual(parseGenerateArgs(['-']), { kind: 'error', message: 'unknown option -' });
    assert.equal(parseGenerateArgs(['o.csv', '1e3']).kind, 'error');
    assert.equal(parseGenerateArgs(['o.csv', '-5']).kind, 'error');
    assert.equal(parseGenerateArgs(['a.csv', '5', 'extra']).kind, 'error');
  });

  it('--help prints the usage and writes no file; an unknown flag exits 2 and writes no file', async () => {
    const cwd = await mkdtemp(join(dir, 'cli-'));
    const help = await runScript(['--help'], cwd);
    assert.equal(help.code, 0, help.stderr);
    assert.match(help.stdout, /^Usage: .*generate-orders\.ts/);
    const bad = await runScript(['--bogus'], cwd);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /unknown option --bogus/);
    assert.match(bad.stderr, /Usage:/);
    assert.deepEqual(await readdir(cwd), []);
    const ok = await runScript(['small.csv', '5'], cwd);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal((await readFile(join(cwd, 'small.csv'), 'utf8')).split('\n').length, 1 + 5 + 1);
  });
});
