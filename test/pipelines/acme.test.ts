/**
 * Every example job in pipelines/acme passes `dativo validate` as shipped
 * (one CLI process for all of them), with each `${VAR}` that has no default
 * set to a placeholder, as a user's environment or secrets dir would.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { it } from 'node:test';
import { dativo, repo } from '../lib/cli/helpers.js';

it('dativo validate passes every job in pipelines/acme', async () => {
  const dir = path.join(repo, 'pipelines/acme');
  const files = (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort();
  assert.ok(files.includes('stripe_charges_refunds.yaml') && files.length >= 6, files.join(', '));
  const env: Record<string, string> = {};
  for (const f of files) {
    for (const m of (await readFile(path.join(dir, f), 'utf8')).matchAll(/\$\{([A-Z0-9_]+)\}/g)) env[m[1]!] = `placeholder_${m[1]!.toLowerCase()}`;
  }
  const r = await dativo(['validate', ...files.map((f) => path.join('pipelines/acme', f)), '--json'], { cwd: repo, env });
  const out = JSON.parse(r.stdout) as { exit_code: number; results: { file: string; ok: boolean; error?: unknown }[] };
  assert.deepEqual(
    out.results.filter((x) => !x.ok),
    [],
    'every job valid',
  );
  assert.equal(out.results.length, files.length);
  assert.equal(r.code, 0, r.stderr);
});
