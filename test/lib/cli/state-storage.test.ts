/**
 * State and storage failures through the CLI, and the `state` commands.
 *
 * The tests run as root, where `chmod 555` does not stop a write. Two ways
 * that do fail for root are used: a warehouse path under a regular file
 * (ENOTDIR, everywhere) and a read-only bind mount of the warehouse in a
 * private mount namespace (`unshare -m`, EROFS; skipped where mount
 * namespaces are not allowed).
 */
import { truncate, writeFile } from 'node:fs/promises';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { canUnshareMounts, dativo, dativoInMountNamespace, jsonLine, ordersJob, ordersProject, snapshot, ORDERS_HEADER, type Project } from './helpers.js';

const projects: Project[] = [];
after(async () => {
  await Promise.all(projects.map((p) => p.cleanup()));
});

/** A project after one good run, with a new file waiting to be read. */
async function afterOneRun(prefix: string): Promise<Project> {
  const pr = await ordersProject(prefix);
  projects.push(pr);
  const first = await dativo(['run', 'job.yaml'], { cwd: pr.dir });
  assert.equal(first.code, 0, first.stderr);
  await pr.write('data/b.csv', `${ORDERS_HEADER}\n3,30.00,2024-01-03T00:00:00Z,2024-01-03,new\n`);
  return pr;
}

interface StateDoc {
  version: number;
  objects: Record<string, { files?: Record<string, unknown>; runId?: string }>;
}

describe('state and storage', { concurrency: 2 }, () => {
  it('a state file cut in half: exit 3 STATE_CORRUPT naming the file; file untouched, no data written; reset is the way out', async () => {
    const pr = await afterOneRun('cut');
    const statePath = pr.p('state/job.json');
    const full = await pr.read('state/job.json');
    await truncate(statePath, Math.floor(full.length / 2));
    const cut = await pr.read('state/job.json');
    const wh = await snapshot(pr.p('wh'));

    const r = await dativo(['run', 'job.yaml', '--json'], { cwd: pr.dir });
    assert.equal(r.code, 3, r.stderr);
    const s = jsonLine(r.stdout);
    assert.equal(s.error?.code, 'STATE_CORRUPT');
    assert.ok(s.error?.message.includes(statePath), s.error?.message);
    assert.match(s.error!.message, /truncated|not valid JSON/);
    assert.deepEqual(await pr.read('state/job.json'), cut, 'the state file is not replaced');
    assert.deepEqual(await snapshot(pr.p('wh')), wh, 'no data written');

    const show = await dativo(['state', 'show', 'job.yaml'], { cwd: pr.dir });
    assert.equal(show.code, 3);
    assert.match(show.stderr, /error \[STATE_CORRUPT\]: state file \S*state\/job\.json cannot be used/);

    const reset = await dativo(['state', 'reset', 'job.yaml'], { cwd: pr.dir });
    assert.equal(reset.code, 0, reset.stderr);
    assert.equal(reset.stdout, `state reset: ${statePath}\n`);
    const again = await dativo(['run', 'job.yaml', '--json'], { cwd: pr.dir });
    assert.equal(again.code, 0, again.stderr);
    // A reset state reads every file again: a.csv's rows are now in the plain dataset twice.
    assert.equal(jsonLine(again.stdout).objects[0]?.rows_written, 3);
  });

  it('state show prints the saved files; reset --object forgets one object only when it exists', async () => {
    const pr = await ordersProject('show');
    projects.push(pr);
    const first = await dativo(['run', 'job.yaml'], { cwd: pr.dir });
    assert.equal(first.code, 0, first.stderr);

    const show = await dativo(['state', 'show', 'job.yaml'], { cwd: pr.dir });
    assert.equal(show.code, 0, show.stderr);
    const doc = JSON.parse(show.stdout) as StateDoc & { file: string };
    assert.equal(doc.file, pr.p('state/job.json'));
    assert.equal(doc.version, 1);
    assert.deepEqual(Object.keys(doc.objects), ['orders']);
    assert.equal(Object.keys(doc.objects['orders']?.files ?? {}).length, 1);

    const unknown = await dativo(['state', 'reset', 'job.yaml', '--object', 'nope'], { cwd: pr.dir });
    assert.equal(unknown.code, 3, 'resetting an object the job does not have is a mistake');
    assert.match(unknown.stderr, /object "nope".*orders/);
    assert.deepEqual(JSON.parse((await pr.read('state/job.json')).toString()).objects, JSON.parse(JSON.stringify(doc.objects)));

    const reset = await dativo(['state', 'reset', 'job.yaml', '--object', 'orders'], { cwd: pr.dir });
    assert.equal(reset.code, 0, reset.stderr);
    assert.equal(reset.stdout, `state reset: ${pr.p('state/job.json')} (object orders)\n`);
    const after1 = JSON.parse((await pr.read('state/job.json')).toString()) as StateDoc;
    assert.deepEqual(after1.objects, {});
    const rerun = await dativo(['run', 'job.yaml', '--json'], { cwd: pr.dir });
    assert.equal(jsonLine(rerun.stdout).objects[0]?.rows_written, 2, 'the object is read again after its reset');
  });

  it('a warehouse path under a regular file (ENOTDIR, fails for root too): exit 3 STORAGE_NOT_WRITABLE, state untouched', async () => {
    const pr = await afterOneRun('enotdir');
    await writeFile(pr.p('blocker'), 'a file where a folder should be\n');
    await pr.write('job.yaml', ordersJob().replace('warehouse: wh', 'warehouse: blocker/wh'));
    const state = await pr.read('state/job.json');
    const r = await dativo(['run', 'job.yaml', '--json'], { cwd: pr.dir });
    assert.equal(r.code, 3, r.stderr);
    const s = jsonLine(r.stdout);
    assert.equal(s.error?.code, 'STORAGE_NOT_WRITABLE');
    assert.ok(s.error?.message.includes(pr.p('blocker/wh')), s.error?.message);
    assert.deepEqual(await pr.read('state/job.json'), state);
    assert.deepEqual(await snapshot(pr.p('rejects')), {});
  });

  it('a read-only warehouse (read-only bind mount, fails for root too): exit 3 STORAGE_NOT_WRITABLE, files and state byte-identical', async (t) => {
    const pr = await afterOneRun('rofs');
    if (!(await canUnshareMounts(pr.p('data')))) {
      t.skip('mount namespaces are not available here (needs CAP_SYS_ADMIN)');
      return;
    }
    const wh = await snapshot(pr.p('wh'));
    const state = await pr.read('state/job.json');
    const r = await dativoInMountNamespace('mount --bind wh wh && mount -o remount,ro,bind wh', ['run', 'job.yaml', '--json'], { cwd: pr.dir });
    assert.equal(r.code, 3, r.stderr);
    const s = jsonLine(r.stdout);
    assert.equal(s.error?.code, 'STORAGE_NOT_WRITABLE');
    assert.match(s.error!.message, /EROFS/);
    assert.ok(s.error?.message.includes(pr.p('wh')), s.error?.message);
    assert.deepEqual(await snapshot(pr.p('wh')), wh);
    assert.deepEqual(await pr.read('state/job.json'), state);

    // Writable again: the pending file is read, nothing was lost.
    const ok = await dativo(['run', 'job.yaml', '--json'], { cwd: pr.dir });
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(jsonLine(ok.stdout).objects[0]?.rows_written, 1);
  });
  for (const where of ['warehouse', 'state'] as const) {
    it(`a ${where} folder that cannot be created (under a read-only bind mount): exit 3 STORAGE_NOT_WRITABLE before any data is written`, async (t) => {
      const pr = await ordersProject(`ro-${where}`);
      projects.push(pr);
      await pr.write('ro/.keep', '');
      if (!(await canUnshareMounts(pr.p('data')))) {
        t.skip('mount namespaces are not available here (needs CAP_SYS_ADMIN)');
        return;
      }
      const lines = where === 'warehouse' ? ['target:', '  warehouse: ro/wh'] : [];
      const job = ordersJob({ lines }).replace(where === 'warehouse' ? /^target:\n {2}warehouse: wh\n/m : /^state: \{path: state\/job\.json\}$/m, where === 'warehouse' ? '' : 'state: {path: ro/state/job.json}');
      await pr.write('job.yaml', job);
      const r = await dativoInMountNamespace('mount --bind ro ro && mount -o remount,ro,bind ro', ['run', 'job.yaml', '--json'], { cwd: pr.dir });
      assert.equal(r.code, 3, r.stdout + r.stderr);
      const s = jsonLine(r.stdout);
      assert.equal(s.error?.code, 'STORAGE_NOT_WRITABLE', r.stdout);
      assert.match(s.error!.message, /EROFS/);
      assert.ok(s.error?.message.includes(pr.p(where === 'warehouse' ? 'ro/wh' : 'ro/state')), s.error?.message);
      assert.deepEqual(await snapshot(pr.p('wh')), {}, 'no data written');
      assert.deepEqual(Object.keys(await snapshot(pr.p('ro'))), ['.keep'], 'nothing created under the read-only folder');
    });
  }
});
