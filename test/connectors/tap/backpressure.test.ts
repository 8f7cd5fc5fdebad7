/**
 * Backpressure through the pipe: while nothing reads the stream, the tap's
 * stdout is paused, its pipe fills and the tap blocks on its next write
 * (it reports what it wrote on stderr). Reading again lets it go on.
 */
import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import { getConnector } from '../../../connectors/index.js';
import type { ReadContext, Reject } from '../../../lib/connector.js';
import { createLogger } from '../../../lib/log.js';
import { tapProject, type TapProject } from './helpers.js';

let p: TapProject;
before(async () => {
  p = await tapProject('tap-bp');
});
after(() => p.cleanup());

test('a paused pipeline pauses the tap; reading resumes it; destroy ends it', async () => {
  const total = 200_000;
  const plan = await p.plan(await p.job('bp', { protocol: 'singer', config: { streams: { customers: total }, batch: 100 } }));
  let log = '';
  const destination = new Writable({
    write(c: Buffer, _e, cb) {
      log += c.toString();
      cb();
    },
  });
  const emitted = (): number => Math.max(0, ...[...log.matchAll(/INFO emitted (\d+)/g)].map((m) => Number(m[1])));
  const rejects: Reject[] = [];
  const ctx: ReadContext = {
    plan,
    object: plan.source.objects[0]!,
    state: undefined,
    fullRefresh: false,
    runId: 'bp',
    runStartedAt: new Date(),
    signal: new AbortController().signal,
    log: createLogger({ level: 'info', destination }),
    rejects: { reject: (r) => rejects.push(r), get count() { return rejects.length; } },
  };
  const stream = (await getConnector('singer')).read(ctx);
  const it = stream[Symbol.asyncIterator]();
  assert.equal((await it.next()).done, false);
  // Give the tap time to run ahead as far as it can.
  let before = -1;
  for (let i = 0; i < 40 && emitted() !== before; i++) {
    before = emitted();
    await sleep(250);
  }
  const stalled = emitted();
  assert.ok(stalled < total / 4, `the tap is held back (it wrote ${stalled} of ${total} records while nobody read)`);
  for (let i = 0; i < 20_000; i++) await it.next();
  await sleep(300);
  assert.ok(emitted() > stalled, `reading lets it go on (${emitted()} > ${stalled})`);
  stream.destroy();
  await sleep(100);
  for (let i = 0; i < 50 && (await p.resourcesOpen()) > 0; i++) await sleep(50);
  assert.equal(await p.resourcesOpen(), 0, 'process ended and its folder removed');
});
