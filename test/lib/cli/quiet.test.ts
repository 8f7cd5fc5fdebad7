/**
 * Quiet when nothing is wrong: a run that has nothing to report prints no
 * warning. A full-refresh job into Iceberg, run again and again, does not warn
 * that the state store is behind the table (a full refresh saves no state).
 * The S3 path on Node 20 (which `engines` admits, and every runtime
 * dependency in the lockfile too) prints no AWS SDK Node-version notice.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { startS3rver, type S3rverHandle } from '../../helpers/s3rver.js';
import { dativo, jsonLine, logLines, ORDERS_ASSET, ORDERS_HEADER, project, repo, type Project } from './helpers.js';

let s3: S3rverHandle;
let pr: Project;

before(async () => {
  s3 = await startS3rver({ buckets: ['lake'] });
  pr = await project('quiet');
  await pr.write('asset.yaml', ORDERS_ASSET);
  await pr.write('data/a.csv', `${ORDERS_HEADER}\n1,10.00,2024-01-01T00:00:00Z,2024-01-01,first\n`);
  await pr.write(
    's3.yaml',
    [
      'tenant_id: t1',
      'source_connector: csv',
      'asset_path: asset.yaml',
      'source: {files: [{path: "data/*.csv", object: orders}]}',
      'target:',
      '  connection:',
      '    s3: {bucket: lake, prefix: wh, endpoint: "${S3_ENDPOINT}", region: us-east-1, path_style_access: true, access_key_id: S3RVER, secret_access_key: S3RVER}',
      'state: {path: state/s3.json}',
      '',
    ].join('\n'),
  );
  await pr.write(
    'full.yaml',
    [
      'tenant_id: t1',
      'source_connector: csv',
      'target_connector: iceberg',
      'asset_path: asset.yaml',
      'source: {files: [{path: "data/*.csv", object: orders}]}',
      'target: {warehouse: lake}',
      'state: {path: state/full.json}',
      '',
    ].join('\n'),
  );
});

after(async () => {
  await pr?.cleanup();
  await s3?.close();
});

/** Does `version` (x.y.z) satisfy an `engines.node` range of the forms npm packages use (`>=20`, `>= 8.0`, `20.x || 22.x`, `*`)? */
function admits(range: string, version: string): boolean {
  const v = version.split('.').map(Number);
  const cmp = (want: string): number => {
    const w = want.replace(/\.x$/, '').split('.').map(Number);
    for (let i = 0; i < w.length; i++) if ((v[i] ?? 0) !== (w[i] ?? 0)) return (v[i] ?? 0) - (w[i] ?? 0);
    return 0;
  };
  return range.split('||').some((alt) => {
    const parts = alt.trim().replace(/(>=|<=|>|<)\s+/g, '$1').split(/\s+/);
    return parts.every((p) => {
      if (p === '*' || p === '') return true;
      const m = /^(>=|<=|>|<|\^|~)?v?(\d+(?:\.\d+|\.x)*)$/.exec(p);
      if (!m) throw new Error(`unparsed engines range ${JSON.stringify(range)}`);
      const c = cmp(m[2]!);
      switch (m[1]) {
        case '>=':
          return c >= 0;
        case '>':
          return c > 0;
        case '<=':
          return c <= 0;
        case '<':
          return c < 0;
        case '^':
          return c >= 0 && v[0] === Number(m[2]!.split('.')[0]);
        default:
          return m[2]!.endsWith('.x') || m[1] === '~' ? c === 0 || (c > 0 && v[0] === Number(m[2]!.split('.')[0])) : c === 0;
      }
    });
  });
}

describe('quiet when nothing is wrong', () => {
  it('the real requirement: engines says node >=20, and every runtime dependency in the lockfile admits Node 20.0.0', async () => {
    const pkg = JSON.parse(await readFile(path.join(repo, 'package.json'), 'utf8')) as { engines: { node: string } };
    assert.equal(pkg.engines.node, '>=20');
    const lock = JSON.parse(await readFile(path.join(repo, 'package-lock.json'), 'utf8')) as { packages: Record<string, { dev?: boolean; engines?: { node?: string } }> };
    const refused = Object.entries(lock.packages)
      .filter(([name, p]) => name !== '' && p.dev !== true && typeof p.engines?.node === 'string' && !admits(p.engines.node, '20.0.0'))
      .map(([name, p]) => `${name} (${p.engines!.node!})`);
    assert.deepEqual(refused, []);
    assert.ok(admits('>=20.0.0', '20.0.0') && !admits('>=22', '20.19.0') && admits('20.x || 22.x', '20.5.1') && !admits('22.x', '20.5.1'), 'the checker itself');
  });

  it('a full-refresh job into Iceberg, run three times: no warning at all (no "state store is behind the table")', async () => {
    for (let i = 1; i <= 3; i++) {
      const r = await dativo(['run', 'full.yaml', '--json'], { cwd: pr.dir });
      assert.equal(r.code, 0, r.stderr);
      const s = jsonLine<{ objects: { rows_written: number; snapshot_id?: string }[] }>(r.stdout);
      assert.equal(s.objects[0]?.rows_written, 1);
      assert.ok(s.objects[0]?.snapshot_id, 'committed to Iceberg');
      const logs = logLines(r.stderr);
      assert.ok(logs.some((l) => l['event_type'] === 'object_finished'));
      assert.deepEqual(logs.filter((l) => l['level'] !== 'info').map((l) => l['msg']), [], `run ${i}`);
    }
  });

  it(`an S3 run on Node ${process.versions.node} prints no AWS SDK Node-version notice and no warning at all`, async () => {
    const r = await dativo(['run', 's3.yaml', '--json'], { cwd: pr.dir, env: { S3_ENDPOINT: s3.endpoint, AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: undefined } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(jsonLine(r.stdout).objects[0]!.files[0]!, /^s3:\/\/lake\/wh\/t1\/shop\/orders\/data\//);
    assert.doesNotMatch(r.stderr, /NodeVersionSupportWarning|\(node:\d+\)|Warning:/);
    assert.deepEqual(logLines(r.stderr).filter((l) => l['level'] !== 'info').map((l) => l['msg']), []);
  });
});
