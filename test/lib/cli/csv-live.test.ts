/**
 * A CSV file read while a writer PROCESS still appends to it lands exactly
 * once. The writer appends the file in bursts that end anywhere — inside a
 * quoted multi-line field, between the `\r` and `\n` of a line break, in the
 * middle of a field, after a lone `\r` — with line endings mixed
 * (`\r\n`, `\n`, `\r`). `dativo run` (the CLI, spawned) runs again and again
 * meanwhile: first in lockstep at chosen cut points (two of those runs
 * SIGKILLed, before the commit and before the state save), then
 * concurrently with the free-running writer. The Iceberg table, read back
 * with icebird, holds every record exactly once with its exact value, and
 * no run rejected anything. The file ends without a final line break: its
 * last record lands once the file has settled.
 *
 * And a file rewritten in place after rows were taken from it stops the run
 * with SOURCE_REWRITTEN (exit 3), nothing committed, until it is reloaded
 * with a full refresh.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { appendFile, readdir, utimes, writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import { mulberry32 } from '../../../pipelines/demo/generate-orders.js';
import { readWarehouseTable } from '../../helpers/iceberg-read.js';
import { dativo, jsonLine, logLines, project, type Project, type Ran } from './helpers.js';

const N = 240;
let pr: Project;

/** Record `i`: its text as written, the value of `note` it must land as. */
function record(i: number): { text: string; note: string } {
  switch (i % 6) {
    case 0:
      return { text: `${i},plain ${i}`, note: `plain ${i}` };
    case 1:
      return { text: `${i},"comma, ${i}"`, note: `comma, ${i}` };
    case 2:
      return { text: `${i},"multi\nline ${i}\r\nthird"`, note: `multi\nline ${i}\r\nthird` };
    case 3:
      return { text: `${i},"quote ""${i}"""`, note: `quote "${i}"` };
    case 4:
      return { text: `${i},"cr ${i}\rinside"`, note: `cr ${i}\rinside` };
    default:
      return { text: `${i},tail ${i}`, note: `tail ${i}` };
  }
}

const EOLS = ['\r\n', '\n', '\r\n', '\r', '\r\n'];

/** The file's whole text, and the byte offsets of the kinds of cut the lockstep runs start at. */
function content(): { bytes: Buffer; cuts: { midQuote: number; crLf: number; midField: number; afterCr: number } } {
  let text = 'id,note\r\n';
  const cuts = { midQuote: 0, crLf: 0, midField: 0, afterCr: 0 };
  for (let i = 1; i <= N; i++) {
    const r = record(i);
    const eol = i === N ? '' : EOLS[i % EOLS.length]!;
    const start = text.length;
    text += r.text + eol;
    // Chosen cuts, in this order through the file (all text is ASCII: chars = bytes).
    if (i === 20) cuts.midQuote = start + r.text.indexOf('\n') + 1; // inside "multi\n|line…"
    if (i === 60 && eol === '\r\n') cuts.crLf = start + r.text.length + 1; // between \r and \n
    if (i === 90) cuts.midField = start + r.text.length - 2; // "plain 9|0"
    if (i === 123 && eol === '\r') cuts.afterCr = start + r.text.length + 1; // after a lone \r
  }
  assert.ok(cuts.midQuote && cuts.crLf && cuts.midField && cuts.afterCr, JSON.stringify(cuts));
  return { bytes: Buffer.from(text, 'latin1'), cuts };
}

/** Split into bursts: the chosen cuts plus random ones, each with a pause before it. */
function bursts(bytes: Buffer, chosen: number[]): { b64: string; pauseMs: number; end: number }[] {
  const rnd = mulberry32(16);
  const ends = new Set(chosen);
  for (let i = 0; i < 70; i++) ends.add(1 + Math.floor(rnd() * (bytes.length - 1)));
  ends.add(bytes.length);
  const sorted = [...ends].sort((a, b) => a - b);
  let from = 0;
  return sorted.map((end) => {
    const b = { b64: bytes.subarray(from, end).toString('base64'), pauseMs: 10 + Math.floor(rnd() * 140), end };
    from = end;
    return b;
  });
}

/**
 * The writer: appends burst after burst to the file, one write(2) each.
 * `step K` on stdin writes up to burst K and answers `ok K`; `go` writes the
 * rest alone, pausing before each burst, and exits.
 */
const WRITER = `
import { closeSync, openSync, readFileSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
const [file, planFile] = process.argv.slice(2);
const plan = JSON.parse(readFileSync(planFile, 'utf8'));
const fd = openSync(file, 'a');
let next = 0;
const write = () => { writeSync(fd, Buffer.from(plan[next].b64, 'base64')); next++; };
const rl = createInterface({ input: process.stdin });
rl.on('line', async (cmd) => {
  const [verb, arg] = cmd.split(' ');
  if (verb === 'step') {
    while (next <= Number(arg)) write();
    process.stdout.write('ok ' + arg + '\\n');
  } else if (verb === 'go') {
    rl.close();
    while (next < plan.length) { await sleep(plan[next].pauseMs); write(); }
    closeSync(fd);
    process.exit(0);
  }
});
`;

/** A project: the events asset, `job.yaml` (Iceberg, `data/<file>`, strict) with `extra` source lines. */
async function eventsProject(prefix: string, file: string, extra: string[]): Promise<Project> {
  const p = await project(prefix);
  await p.write(
    'asset.yaml',
    [
      'apiVersion: v3.0.2',
      'kind: DataContract',
      'name: events',
      'version: "1.0"',
      'domain: live',
      'schema:',
      '  - {name: id, type: long, required: true}',
      '  - {name: note, type: string}',
      'team: {owner: data@example.com}',
      '',
    ].join('\n'),
  );
  await p.write(
    'job.yaml',
    [
      'tenant_id: live',
      'source_connector: csv',
      'target_connector: iceberg',
      'asset_path: asset.yaml',
      'source:',
      `  files: [{path: data/${file}, object: events}]`,
      '  incremental: {strategy: file_modified_time}',
      ...extra,
      'target:',
      '  warehouse: wh',
      'state: {path: state/job.json}',
      'reject_dir: rejects',
      'schema_validation_mode: strict',
      '',
    ].join('\n'),
  );
  return p;
}

let rw: Project;
before(async () => {
  // Far above any pause of the writer (or a slow CLI start on a busy machine).
  pr = await eventsProject('csv-live', 'live.csv', ['  settle_seconds: 30']);
  await pr.write('data/live.csv', '');
  rw = await eventsProject('csv-rewritten', 'r.csv', ['  settle_seconds: 0']);
});

after(async () => {
  await pr.cleanup();
  await rw.cleanup();
});

/** One `dativo run --json` in `p` (default the writer's project); a pause point SIGKILLs it there. */
function run(pauseAt?: 'before_commit' | 'before_state_save', p: Project = pr): Promise<Ran> {
  return dativo(['run', 'job.yaml', '--json'], {
    cwd: p.dir,
    timeoutMs: 120_000,
    ...(pauseAt ? { env: { DATIVO_PAUSE_AT: pauseAt }, killOnStderr: `paused at ${pauseAt}` } : {}),
  });
}

/** A run that must end well: exit 0, nothing rejected. Returns whether it held back an unfinished record. */
function finished(r: Ran, what: string): boolean {
  assert.equal(r.code, 0, `${what}: ${r.stderr}`);
  const s = jsonLine(r.stdout);
  assert.equal(s.objects[0]!.rows_rejected, 0, what);
  return logLines(r.stderr).some((l) => l.event_type === 'csv_tail_held');
}

test('a writer process appending in bursts while dativo runs (twice SIGKILLed): every record once, nothing rejected', { timeout: 300_000 }, async () => {
  const { bytes, cuts } = content();
  const plan = bursts(bytes, [cuts.midQuote, cuts.crLf, cuts.midField, cuts.afterCr]);
  const stepTo = (end: number): number => plan.findIndex((b) => b.end === end);
  await writeFile(pr.p('plan.json'), JSON.stringify(plan));
  await writeFile(pr.p('writer.mjs'), WRITER);
  const writer: ChildProcessWithoutNullStreams = spawn(process.execPath, [pr.p('writer.mjs'), pr.p('data/live.csv'), pr.p('plan.json')], { stdio: 'pipe' });
  const exited = once(writer, 'exit');
  const answers = createInterface({ input: writer.stdout });
  const acks: string[] = [];
  let waiting: (() => void) | undefined;
  answers.on('line', (l) => {
    acks.push(l);
    waiting?.();
  });
  const step = async (k: number): Promise<void> => {
    writer.stdin.write(`step ${k}\n`);
    while (!acks.includes(`ok ${k}`)) await new Promise<void>((resolve) => (waiting = resolve));
  };
  try {
    // Lockstep: each run starts with the file cut at a chosen place.
    await step(stepTo(cuts.midQuote));
    assert.equal(finished(await run(), 'inside a quoted field'), true, 'the open multi-line field was held back');
    await step(stepTo(cuts.crLf));
    const killed1 = await run('before_commit');
    assert.equal(killed1.signal, 'SIGKILL', killed1.stderr);
    await step(stepTo(cuts.midField));
    assert.equal(finished(await run(), 'in the middle of a field'), true);
    await step(stepTo(cuts.afterCr));
    const killed2 = await run('before_state_save');
    assert.equal(killed2.signal, 'SIGKILL', killed2.stderr);

    // Free-running: the writer appends on its own while runs follow each other.
    writer.stdin.write('go\n');
    let done = false;
    void exited.then(() => (done = true));
    let concurrent = 0;
    while (!done) {
      finished(await run(), `concurrent run ${++concurrent}`);
    }
    assert.ok(concurrent >= 1);
  } finally {
    if (writer.exitCode === null) writer.kill('SIGKILL');
  }
  const [code] = (await exited) as [number | null];
  assert.equal(code, 0, 'the writer wrote every burst');

  // The writer is done, but the file changed seconds ago: its last record,
  // without a final line break, still waits.
  assert.equal(finished(await run(), 'after the writer'), true);
  const before = await readWarehouseTable(pr.p('wh'), 'live.live', 'events');
  assert.ok(!before.some((r) => r['id'] === BigInt(N)), 'the unfinished last record is not in the table yet');
  // Settled (modified a minute ago): the last line without a line break is read.
  const t = new Date(Date.now() - 60_000);
  await utimes(pr.p('data/live.csv'), t, t);
  assert.equal(finished(await run(), 'settled'), false);
  assert.equal(finished(await run(), 'nothing new'), false);

  const rows = await readWarehouseTable(pr.p('wh'), 'live.live', 'events');
  const byId = new Map<bigint, unknown[]>();
  for (const r of rows) byId.set(r['id'] as bigint, [...(byId.get(r['id'] as bigint) ?? []), r['note']]);
  const dup = [...byId].filter(([, notes]) => notes.length !== 1);
  assert.deepEqual(dup, [], 'no record twice');
  assert.equal(rows.length, N, 'every record once');
  for (let i = 1; i <= N; i++) assert.deepEqual(byId.get(BigInt(i)), [record(i).note], `record ${i}`);
  assert.deepEqual(await readdir(pr.p('rejects')).catch(() => []), [], 'no reject file');
});

test('a file rewritten after rows were taken from it: SOURCE_REWRITTEN, exit 3, nothing committed; a full refresh reloads it', async () => {
  await rw.write('data/r.csv', 'id,note\n1,a\n2,b\n');
  finished(await run(undefined, rw), 'first');
  const state = await rw.read('state/job.json');
  // Rewritten in place: row 2 changed, row 3 added.
  await rw.write('data/r.csv', 'id,note\n1,a\n2,B\n3,c\n');
  const r = await run(undefined, rw);
  assert.equal(r.code, 3, r.stderr);
  const s = jsonLine(r.stdout);
  assert.equal(s.objects[0]!.error?.code, 'SOURCE_REWRITTEN');
  const msg = s.objects[0]!.error!.message;
  assert.ok(msg.includes(rw.p('data/r.csv')), msg);
  assert.match(msg, /first 16 bytes are not those read before/);
  assert.match(msg, /sync_mode: full_refresh/);
  assert.match(msg, /dativo state reset <job> --object events/);
  assert.deepEqual((await rw.read('state/job.json')).equals(state), true, 'state untouched');
  const rows = async (): Promise<unknown[]> =>
    (await readWarehouseTable(rw.p('wh'), 'live.live', 'events')).map((x) => [x['id'], x['note']]).sort((a, b) => Number((a as bigint[])[0]) - Number((b as bigint[])[0]));
  assert.deepEqual(await rows(), [[1n, 'a'], [2n, 'b']], 'nothing committed');
  // Every later run says the same until a human reloads.
  assert.equal((await run(undefined, rw)).code, 3);

  // The reload the message names: one full-refresh run replaces the table,
  // then the job goes on incrementally from the file as it is now.
  const job = (await rw.read('job.yaml')).toString();
  await rw.write('job.yaml', `${job}sync_mode: full_refresh\n`);
  finished(await run(undefined, rw), 'full refresh');
  assert.deepEqual(await rows(), [[1n, 'a'], [2n, 'B'], [3n, 'c']]);
  await rw.write('job.yaml', job);
  await appendFile(rw.p('data/r.csv'), '4,d\n');
  finished(await run(undefined, rw), 'incremental again');
  assert.deepEqual(await rows(), [[1n, 'a'], [2n, 'B'], [3n, 'c'], [4n, 'd']]);
});
