/**
 * Config errors carry the codes docs/errors.md gives, from `dativo validate`
 * already, with exit 3 and nothing written: a YAML alias bomb is
 * CONFIG_INVALID naming the file (not INTERNAL); names that would lead out
 * of the warehouse (`name: ../../etc/x`, `domain: ..`, `namespace: ../..`)
 * are CONFIG_INVALID naming file and key; a job file over 10 MiB is refused
 * before it is parsed, naming file and size.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { dativo, jsonLine, ORDERS_ASSET, ordersJob, ordersProject, snapshot, type Project } from './helpers.js';

let pr: Project;

before(async () => {
  pr = await ordersProject('codes');
});

after(async () => {
  await pr?.cleanup();
});

/** `validate --json` and `run --json` of `job`: both exit 3 with `code`; returns the validate error and the run error. */
async function refused(job: string, code: string): Promise<{ validate: { code: string; message: string; problems?: { file: string; key: string; message: string }[] }; run: string }> {
  const [v, r] = await Promise.all([dativo(['validate', job, '--json'], { cwd: pr.dir }), dativo(['run', job, '--json'], { cwd: pr.dir })]);
  assert.equal(v.code, 3, v.stdout + v.stderr);
  assert.equal(r.code, 3, r.stdout + r.stderr);
  const result = (JSON.parse(v.stdout) as { results: { ok: boolean; error: { code: string; message: string; problems?: { file: string; key: string; message: string }[] } }[] }).results[0]!;
  assert.equal(result.ok, false);
  assert.equal(result.error.code, code, v.stdout);
  const s = jsonLine(r.stdout);
  assert.equal(s.error?.code, code, r.stdout);
  for (const d of ['wh', 'state', 'rejects']) assert.deepEqual(await snapshot(pr.p(d)), {}, `nothing written under ${d}/`);
  return { validate: result.error, run: s.error!.message };
}

describe('config error codes', { concurrency: 2 }, () => {
  it('a YAML alias bomb: CONFIG_INVALID naming the file, not INTERNAL', async () => {
    const levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'];
    for (let i = 1; i < 9; i++) levels.push(`${String.fromCharCode(97 + i)}: &${String.fromCharCode(97 + i)} [${Array(9).fill(`*${String.fromCharCode(96 + i)}`).join(',')}]`);
    await pr.write('bomb.yaml', `${ordersJob()}${levels.join('\n')}\n`);
    const { validate, run } = await refused('bomb.yaml', 'CONFIG_INVALID');
    assert.match(validate.message, new RegExp(`^${pr.p('bomb.yaml')}: YAML aliases expand too far`));
    assert.match(run, /bomb\.yaml: YAML aliases expand too far/);
  });

  for (const [what, file, edit, key] of [
    ['asset name: ../../etc/x', 'escape-name', (a: string) => a.replace('name: orders', 'name: ../../etc/x'), 'name'],
    ['asset domain: ..', 'escape-domain', (a: string) => a.replace('domain: shop', 'domain: ".."'), 'domain'],
    ['target namespace: ../..', 'escape-ns', (a: string) => a, 'target.namespace'],
  ] as const) {
    it(`${what}: CONFIG_INVALID from validate already, naming file and key`, async () => {
      await pr.write(`${file}.asset.yaml`, edit(ORDERS_ASSET));
      const job = ordersJob().replace('asset_path: asset.yaml', `asset_path: ${file}.asset.yaml`).replace('  warehouse: wh', key === 'target.namespace' ? '  warehouse: wh\n  namespace: ../..' : '  warehouse: wh');
      await pr.write(`${file}.yaml`, job);
      const { validate } = await refused(`${file}.yaml`, 'CONFIG_INVALID');
      const p = validate.problems?.find((x) => x.key === key);
      assert.ok(p, JSON.stringify(validate));
      assert.equal(p.file, pr.p(key === 'target.namespace' ? `${file}.yaml` : `${file}.asset.yaml`));
      assert.match(p.message, /outside its place in the warehouse/);
    });
  }

  it('a 50 MiB job file: refused before parsing, naming the file and its size, in seconds', async () => {
    await pr.write('huge.yaml', `${ordersJob()}# ${'x'.repeat(1024 * 1024 - 3)}\n`.repeat(1) + `${'#'.padEnd(1023, 'y')}\n`.repeat(50 * 1024));
    const t0 = Date.now();
    const { validate } = await refused('huge.yaml', 'CONFIG_INVALID');
    assert.ok(Date.now() - t0 < 30_000, `${Date.now() - t0} ms (it took 109 s unrefused)`);
    assert.match(validate.message, new RegExp(`^${pr.p('huge.yaml')}: job file is 51\\.\\d MiB, over the 10\\.0 MiB limit for a config file \\(not parsed\\)$`));
  });
});
