/**
 * `dativo run` on Singer taps (the fake tap, test/fakes/singer-tap.mjs, as
 * a real child process) into Iceberg: several streams of thousands of
 * records with STATE between batches land exactly once and exactly; the
 * state goes back to the tap; a tap that crashes, is killed, prints garbage,
 * prints a STATE that is not JSON or hangs commits nothing past the last
 * committed state and says why; undeclared streams and oversized records
 * are rejected and counted; a SCHEMA against the asset, a missing or
 * non-executable command stop the run with exit 3.
 */
import assert from 'node:assert/strict';
import { chmod, readFile, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DativoError } from '../../../lib/errors.js';
import { fileURLToPath } from 'node:url';
import { readParquetWithDuckDB } from '../../helpers/readers.js';
import { keys, runTapJob, tableKeys, tapProject, type TapProject } from '../tap/helpers.js';

let p: TapProject;
before(async () => {
  p = await tapProject('singer-run');
});
after(() => p.cleanup());

const twoStreams = (customers: number, orders: number, extra: Record<string, unknown> = {}): Record<string, unknown> => ({ streams: { customers, orders }, batch: 500, ...extra });

test('two streams, thousands of records with STATE between batches: every record once, values exact, state handed back', async () => {
  const file = await p.job('multi', { protocol: 'singer', config: twoStreams(3000, 2000), objects: ['customers', 'orders'] });
  const first = await runTapJob(file);
  assert.equal(first.summary.exit_code, 0, first.logs);
  assert.deepEqual(first.summary.objects.map((o) => [o.name, o.rows_written]), [['customers', 3000], ['orders', 2000]]);
  assert.deepEqual(await tableKeys(p.dir, 'multi'), [...keys('customers', 1, 3000), ...keys('orders', 1, 2000)].sort());

  // Values exactly as the tap sent them, read back by DuckDB from the data file.
  const file0 = first.summary.objects[0]!.files[0]!;
  const { rows } = await readParquetWithDuckDB(fileURLToPath(file0));
  const r = rows.find((x) => x['name'] === 'customers 2999 ü')!;
  assert.equal(r['id'], 2999n);
  assert.equal(r['big'], 9007199254740992n + 2999n, 'an integer past 2^53 lands digit for digit');
  assert.equal(r['amount'], '2999.50', 'decimal(12,2), exact');
  assert.equal(r['updated_at'], BigInt(Date.UTC(2026, 0, 1) + 2999_000) * 1000n + 123n, 'microseconds, UTC');

  // The committed state is the tap's last STATE, exactly (a 64-bit position included).
  const state = JSON.parse(await readFile(path.join(p.dir, 'state/multi.json'), 'utf8')) as { objects: Record<string, { tap?: { state: string } }> };
  assert.equal(state.objects['customers']?.tap?.state, '{"bookmarks":{"customers":{"id":3000}},"position":18446744073709551615}');
  assert.equal(state.objects['orders']?.tap?.state, '{"bookmarks":{"orders":{"id":2000}},"position":18446744073709551615}');

  // Next run: the tap gets that state as --state and sends only what is new.
  await p.job('multi', { protocol: 'singer', config: twoStreams(3500, 2000), objects: ['customers', 'orders'] });
  const second = await runTapJob(file);
  assert.equal(second.summary.exit_code, 0, second.logs);
  assert.deepEqual(second.summary.objects.map((o) => o.rows_written), [500, 0]);
  assert.match(second.logs, /syncing customers from \{\\"customers\\":\{\\"id\\":3000\}\}/);
  assert.deepEqual(await tableKeys(p.dir, 'multi'), [...keys('customers', 1, 3500), ...keys('orders', 1, 2000)].sort());

  // The tap was run with the catalog selecting one stream, its files in a private folder, since removed.
  const seen = await p.seen();
  assert.ok(seen.length >= 4);
  for (const s of seen) {
    assert.equal(s.dirMode, 0o700, 'private folder');
    assert.equal(s.configMode, 0o600, 'config readable by us only');
    await assert.rejects(readdir(s.dir), /ENOENT/, 'removed after the run');
  }
});

describe('a tap that fails commits nothing past the last committed state', () => {
  const cases = [
    { mode: 'crash', code: 'TAP_FAILED', message: /exited with code 1; last stderr lines:[\s\S]*RuntimeError: boom/ },
    { mode: 'kill', code: 'TAP_FAILED', message: /was killed by SIGKILL/ },
    { mode: 'garbage', code: 'TAP_PROTOCOL', message: /printed a line that is not JSON on stdout line \d+: Oops, this is not JSON/ },
    { mode: 'bad_state', code: 'TAP_PROTOCOL', message: /printed a STATE message that is not JSON/ },
    { mode: 'hang', code: 'TAP_FAILED', message: /did not finish within its timeout \(1 s, source.timeout_seconds\) and was killed[\s\S]*waiting for the API forever/ },
  ];
  for (const c of cases) {
    test(`${c.mode}: exit 2 (${c.code}), the table and state as the last good run left them, then the rerun lands every record once`, async () => {
      const name = `fail-${c.mode}`;
      const file = await p.job(name, { protocol: 'singer', config: { streams: { customers: 1000 } } });
      assert.equal((await runTapJob(file)).summary.exit_code, 0);
      const stateBefore = await readFile(path.join(p.dir, `state/${name}.json`), 'utf8');

      await p.job(name, { protocol: 'singer', config: { streams: { customers: 2500 }, mode: c.mode, fail_after: 700 }, source: { timeout_seconds: 1 } });
      const failed = await runTapJob(file);
      assert.equal(failed.summary.exit_code, 2, failed.logs);
      assert.equal(failed.summary.error?.code, c.code);
      assert.match(failed.summary.error?.message ?? '', c.message);
      assert.deepEqual(await tableKeys(p.dir, name), keys('customers', 1, 1000), 'nothing of the failed run is in the table');
      assert.equal(await readFile(path.join(p.dir, `state/${name}.json`), 'utf8'), stateBefore, 'state untouched');
      assert.equal(await p.resourcesOpen(), 0, 'the tap is gone and its folder removed');

      await p.job(name, { protocol: 'singer', config: { streams: { customers: 2500 } } });
      const rerun = await runTapJob(file);
      assert.equal(rerun.summary.exit_code, 0, rerun.logs);
      assert.deepEqual(await tableKeys(p.dir, name), keys('customers', 1, 2500));
    });
  }
});

test('a tap that emits STATE before the records it covers: committed only at its clean end, so nothing is lost or doubled', async () => {
  const file = await p.job('state-first', { protocol: 'singer', config: { streams: { customers: 1200 }, mode: 'state_first', batch: 500 } });
  assert.equal((await runTapJob(file)).summary.exit_code, 0);
  await p.job('state-first', { protocol: 'singer', config: { streams: { customers: 1900 }, mode: 'state_first', batch: 500 } });
  const second = await runTapJob(file);
  assert.equal(second.summary.exit_code, 0, second.logs);
  assert.equal(second.summary.objects[0]?.rows_written, 700);
  assert.deepEqual(await tableKeys(p.dir, 'state-first'), keys('customers', 1, 1900));
});

test('records of a stream the job does not declare are rejected and counted; the rest lands (warn mode: exit 1)', async () => {
  const file = await p.job('undeclared', { protocol: 'singer', config: { streams: { customers: 1000 }, mode: 'undeclared', fail_after: 10 } });
  const run = await runTapJob(file);
  assert.equal(run.summary.exit_code, 1, run.logs);
  assert.equal(run.summary.objects[0]?.rows_rejected, 3);
  assert.equal(run.summary.objects[0]?.rows_written, 1000);
  const rejects = (await readFile(run.summary.objects[0]!.reject_file!, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { code: string; reason: string });
  assert.deepEqual(rejects.map((x) => x.code), ['undeclared_stream', 'undeclared_stream', 'undeclared_stream']);
  assert.match(rejects[0]!.reason, /stream "ghost", which the job does not declare/);
});

test('a record over source.max_record_bytes is rejected with its stream and size, never held in memory', async () => {
  const file = await p.job('huge', { protocol: 'singer', config: { streams: { customers: 800 }, mode: 'huge', fail_after: 100 }, source: { max_record_bytes: 1024 * 1024 } });
  const run = await runTapJob(file);
  assert.equal(run.summary.exit_code, 1, run.logs);
  assert.equal(run.summary.objects[0]?.rows_written, 800);
  const [reject] = (await readFile(run.summary.objects[0]!.reject_file!, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { code: string; reason: string; location: { stream: string; bytes: number } });
  assert.equal(reject?.code, 'record_too_large');
  assert.equal(reject?.location.stream, 'customers');
  assert.ok(reject!.location.bytes > 2 * 1024 * 1024);
  assert.match(reject!.reason, /a RECORD of stream "customers" is \d+ bytes, over source.max_record_bytes \(1048576\)/);
});

test('a SCHEMA that contradicts the asset stops the run with exit 3 before a row is written', async () => {
  const bad = { type: 'object', properties: { id: { type: 'integer' }, updated_at: { type: 'boolean' } } };
  const file = await p.job('schema', { protocol: 'singer', config: { streams: { customers: 100 }, schema_override: { customers: bad } } });
  const run = await runTapJob(file);
  assert.equal(run.summary.exit_code, 3, run.logs);
  assert.equal(run.summary.error?.code, 'SCHEMA_INCOMPATIBLE');
  assert.match(run.summary.error?.message ?? '', /column "updated_at" is timestamp in the asset but boolean in the stream's schema/);
  assert.deepEqual(await tableKeys(p.dir, 'schema'), []);
});

test('a command that does not exist, or is not executable: exit 3 naming it, nothing started', async () => {
  const missing = await p.job('missing', { protocol: 'singer', config: { streams: { customers: 1 } }, source: { command: ['tap-does-not-exist-anywhere'] } });
  const a = await runTapJob(missing);
  assert.equal(a.summary.exit_code, 3);
  assert.equal(a.summary.error?.code, 'CONFIG_INVALID');
  assert.match(a.summary.error?.message ?? '', /source.command: "tap-does-not-exist-anywhere" was not found on PATH/);

  const script = path.join(p.dir, 'not-executable.sh');
  await writeFile(script, '#!/bin/sh\necho hi\n');
  await chmod(script, 0o644);
  const noexec = await p.job('noexec', { protocol: 'singer', config: { streams: { customers: 1 } }, source: { command: './not-executable.sh' } });
  const b = await runTapJob(noexec);
  assert.equal(b.summary.exit_code, 3);
  assert.match(b.summary.error?.message ?? '', /source.command: ".\/not-executable.sh" is not an executable file/);
});

test('config values from secrets reach the tap in its file, never our log, error or summary (even when the tap prints them)', async () => {
  const secret = 'sk_live_0123456789abcdefSECRET';
  const file = await p.job('secret', { protocol: 'singer', config: { streams: { customers: 50 }, api_key: '${TAP_API_KEY}', mode: 'crash', fail_after: 10, echo_secret: true } });
  const run = await runTapJob(file, { env: { ...process.env, TAP_API_KEY: secret } });
  assert.equal(run.summary.exit_code, 2);
  assert.match(run.summary.error?.message ?? '', /request refused, api_key=\[REDACTED\]/, 'the tap printed it (so it had it), we masked it');
  assert.match(run.logs, /api_key=\[REDACTED\]/);
  assert.ok(!run.logs.includes(secret), 'not in the log');
  assert.ok(!JSON.stringify(run.summary).includes(secret), 'not in the summary');
  const seen = await p.seen();
  assert.ok(seen.every((s) => !s.argv.join(' ').includes(secret)), 'not on the command line either');
});

test('options are checked when the job loads: a Singer job without a command, an Airbyte job with both command and image', async () => {
  const singer = await p.job('no-command', { protocol: 'singer', config: {}, source: { command: undefined } });
  await assert.rejects(p.plan(singer), (e: unknown) => e instanceof DativoError && e.code === 'CONFIG_INVALID' && e.problems.some((x) => x.key === 'source.command'));
  const airbyte = await p.job('both', { protocol: 'airbyte', config: {}, source: { image: 'airbyte/source-faker:latest' } });
  await assert.rejects(p.plan(airbyte), (e: unknown) => e instanceof DativoError && e.problems.some((x) => x.key === 'source.command' && /exactly one of source.command/.test(x.message)));
});
