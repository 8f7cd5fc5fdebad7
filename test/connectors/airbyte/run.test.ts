/**
 * `dativo run` on an Airbyte source (the fake, test/fakes/airbyte-source.mjs,
 * as a real child process): per-stream, global and legacy STATE committed
 * and handed back, LOG lines at their level in our log, TRACE errors mapped
 * to exit codes with nothing committed, and a config its spec refuses
 * stopped with exit 3 before the source reads.
 */
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { airbyteArgv } from '../../../connectors/airbyte/index.js';
import { keys, runTapJob, tableKeys, tapProject, type TapProject } from '../tap/helpers.js';

let p: TapProject;
before(async () => {
  p = await tapProject('airbyte-run');
});
after(() => p.cleanup());

const logLines = (logs: string): { level: string; msg: string; event_type?: string }[] =>
  logs
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { level: string; msg: string; event_type?: string });

test('per-stream STATE over two streams: every record once, state handed back, LOG lines at their level', async () => {
  const file = await p.job('stream', { protocol: 'airbyte', config: { streams: { customers: 2000, orders: 1500 }, batch: 500 }, objects: ['customers', 'orders'] });
  const first = await runTapJob(file);
  assert.equal(first.summary.exit_code, 0, first.logs);
  assert.deepEqual(await tableKeys(p.dir, 'stream'), [...keys('customers', 1, 2000), ...keys('orders', 1, 1500)].sort());
  const state = JSON.parse(await readFile(path.join(p.dir, 'state/stream.json'), 'utf8')) as { objects: Record<string, { tap?: { state: string } }> };
  assert.equal(state.objects['customers']?.tap?.state, '[{"type":"STREAM","stream":{"stream_descriptor":{"name":"customers"},"stream_state":{"id":2000}}}]');
  const logs = logLines(first.logs);
  assert.ok(logs.some((l) => l.level === 'warn' && l.msg === 'fake source warning' && l.event_type === 'tap_log'), 'a WARN LOG message is a warn line');
  assert.ok(logs.some((l) => l.level === 'info' && l.msg === 'spec requested'), 'LOG lines of spec too');

  await p.job('stream', { protocol: 'airbyte', config: { streams: { customers: 2600, orders: 1500 }, batch: 500 }, objects: ['customers', 'orders'] });
  const second = await runTapJob(file);
  assert.equal(second.summary.exit_code, 0, second.logs);
  assert.deepEqual(second.summary.objects.map((o) => o.rows_written), [600, 0]);
  assert.deepEqual(await tableKeys(p.dir, 'stream'), [...keys('customers', 1, 2600), ...keys('orders', 1, 1500)].sort());
});

for (const stateType of ['GLOBAL', 'LEGACY']) {
  test(`${stateType} state is committed exactly and resumes the source`, async () => {
    const name = `state-${stateType.toLowerCase()}`;
    const file = await p.job(name, { protocol: 'airbyte', config: { streams: { customers: 1000 }, state_type: stateType } });
    assert.equal((await runTapJob(file)).summary.exit_code, 0);
    const state = JSON.parse(await readFile(path.join(p.dir, `state/${name}.json`), 'utf8')) as { objects: Record<string, { tap?: { state: string } }> };
    assert.equal(
      state.objects['customers']?.tap?.state,
      stateType === 'GLOBAL'
        ? '[{"type":"GLOBAL","global":{"shared_state":{"lsn":18446744073709551615},"stream_states":[{"stream_descriptor":{"name":"customers"},"stream_state":{"id":1000}}]}}]'
        : '{"bookmarks":{"customers":{"id":1000}}}',
    );
    await p.job(name, { protocol: 'airbyte', config: { streams: { customers: 1400 }, state_type: stateType } });
    const second = await runTapJob(file);
    assert.equal(second.summary.objects[0]?.rows_written, 400, second.logs);
    assert.deepEqual(await tableKeys(p.dir, name), keys('customers', 1, 1400));
  });
}

describe('TRACE errors map to exit codes; nothing of the run is committed', () => {
  const cases = [
    { trace: 'config_error', exit: 3, code: 'CONFIG_INVALID' },
    { trace: 'transient_error', exit: 2, code: 'SOURCE_UNAVAILABLE' },
    { trace: 'system_error', exit: 2, code: 'SOURCE_ERROR' },
  ];
  for (const c of cases) {
    test(`${c.trace} → exit ${c.exit} (${c.code})`, async () => {
      const name = `trace-${c.trace}`;
      const file = await p.job(name, { protocol: 'airbyte', config: { streams: { customers: 1000 }, trace: c.trace, fail_after: 600 } });
      const run = await runTapJob(file);
      assert.equal(run.summary.exit_code, c.exit, run.logs);
      assert.equal(run.summary.error?.code, c.code);
      assert.match(run.summary.error?.message ?? '', new RegExp(`the Airbyte source reported a ${c.trace}: fake ${c.trace} \\(internal detail\\)`));
      assert.deepEqual(await tableKeys(p.dir, name), []);
      assert.equal(await p.resourcesOpen(), 0);
    });
  }
});

test('a config missing a key its spec requires: exit 3 naming source.config.<key>, before the source discovers or reads', async () => {
  const before = (await p.seen()).length;
  const file = await p.job('spec', { protocol: 'airbyte', config: { api_key: undefined, streams: { customers: 10 } } });
  const run = await runTapJob(file);
  assert.equal(run.summary.exit_code, 3, run.logs);
  assert.equal(run.summary.error?.code, 'CONFIG_INVALID');
  assert.match(run.summary.error?.message ?? '', /source.config does not match the Airbyte source's spec: source.config.api_key: required by the source's spec/);
  assert.equal((await p.seen()).length, before, 'no discover or read process was started (only spec, which takes no config)');
});

test('source.image runs the source as `docker run --rm -i` with its private folder mounted', () => {
  assert.deepEqual(airbyteArgv({ image: 'airbyte/source-stripe:5.8.0' }, '/tmp/dativo-tap-x'), ['docker', 'run', '--rm', '-i', '-v', '/tmp/dativo-tap-x:/tmp/dativo-tap-x', 'airbyte/source-stripe:5.8.0']);
  assert.deepEqual(airbyteArgv({ command: ['./source.py'] }, '/tmp/x'), ['./source.py']);
});
