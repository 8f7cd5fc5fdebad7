/**
 * A disk that fills up in the middle of a run (a 192 KiB tmpfs mounted over
 * the warehouse in a private mount namespace, so it fails for root too and
 * vanishes with the process): exit 2 (STORAGE_IO, retryable), the files this
 * run had already finished are removed, the earlier run's file is
 * byte-identical, the state is unchanged, and a rerun with space writes
 * every row.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { canUnshareMounts, dativo, dativoArgv, jsonLine, ordersJob, ordersProject, snapshot, ORDERS_HEADER, type Project } from './helpers.js';

const ROWS = 150_000;
let pr: Project;
let available = false;

before(async () => {
  pr = await ordersProject('nospc');
  available = await canUnshareMounts(pr.p('data'));
  // Small files, so that several are finished before the disk is full.
  await pr.write('job.yaml', ordersJob().replace('  warehouse: wh', '  warehouse: wh\n  parquet_target_size_mb: 0.05\n  row_group_rows: 5000'));
});

after(async () => {
  await pr?.cleanup();
});

it('disk full mid-run: exit 2 STORAGE_IO, no file of the failed run left, earlier data and state byte-identical', async (t) => {
  if (!available) {
    t.skip('mount namespaces are not available here (needs CAP_SYS_ADMIN)');
    return;
  }
  const first = await dativo(['run', 'job.yaml'], { cwd: pr.dir });
  assert.equal(first.code, 0, first.stderr);
  const wh = await snapshot(pr.p('wh'));
  assert.equal(Object.keys(wh).length, 1);
  const state = await pr.read('state/job.json');

  const lines = [ORDERS_HEADER];
  for (let i = 10; i < 10 + ROWS; i++) lines.push(`${i},${i % 100_000}.${String(i % 97).padStart(2, '0')},2024-01-01T00:00:00Z,2024-01-02,n${(i * 7919) % 1_000_003}`);
  await pr.write('data/big.csv', `${lines.join('\n')}\n`);

  // Inside the namespace: move the warehouse onto a small tmpfs, run, then
  // record what the tmpfs holds (it disappears with the namespace).
  const script = [
    'set -e',
    'cp -a wh wh.saved',
    'mount -t tmpfs -o size=192k tmpfs wh',
    'cp -a wh.saved/. wh/',
    'rm -rf wh.saved',
    'set +e',
    '"$@" > run.json 2> run.log',
    'echo $? > exit.txt',
    'cd wh && find . -type f -exec sha256sum {} + > ../inside.txt',
  ].join('\n');
  const r = await new Promise<number | null>((resolve, reject) => {
    const child = spawn('unshare', ['-m', '--propagation', 'private', 'sh', '-c', script, 'sh', process.execPath, ...dativoArgv(['run', 'job.yaml', '--json'])], {
      cwd: pr.dir,
      stdio: 'ignore',
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve(code);
    });
  });
  assert.equal(r, 0, 'namespace script ran');
  const log = (await pr.read('run.log')).toString();
  assert.equal((await pr.read('exit.txt')).toString().trim(), '2', log.slice(-2000));
  const s = jsonLine((await pr.read('run.json')).toString());
  assert.equal(s.exit_code, 2);
  assert.equal(s.objects[0]?.error?.code, 'STORAGE_IO');
  assert.match(s.objects[0]!.error!.message, /ENOSPC/);
  assert.ok(s.objects[0]!.rows_read < ROWS + 2, 'failed before the end');
  assert.deepEqual(s.objects[0]?.files, []);
  assert.match(log, /"event_type":"object_failed"/);
  // At least one file of the failed run had been finished before the failure: it was removed.
  const finished = [...log.matchAll(/part-\S+?-orders-(\d{5})\.parquet/g)].map((m) => Number(m[1]));
  assert.ok(Math.max(...finished) >= 2, `the run got past its first file (${finished.join(',')})`);

  const inside = Object.fromEntries(
    (await readFile(pr.p('inside.txt'), 'utf8'))
      .trim()
      .split('\n')
      .map((l) => {
        const [hash, file] = l.split(/\s+/);
        return [file!.replace(/^\.\//, ''), hash!];
      }),
  );
  assert.deepEqual(inside, wh, 'the tmpfs warehouse holds exactly the earlier file, byte-identical');
  assert.deepEqual(await pr.read('state/job.json'), state, 'state unchanged');
  assert.equal(createHash('sha256').update(await pr.read('state/job.json')).digest('hex'), createHash('sha256').update(state).digest('hex'));

  // With space again, nothing was lost: the new file is read whole.
  const again = await dativo(['run', 'job.yaml', '--json'], { cwd: pr.dir });
  assert.equal(again.code, 0, again.stderr);
  assert.equal(jsonLine(again.stdout).objects[0]?.rows_written, ROWS);
});
