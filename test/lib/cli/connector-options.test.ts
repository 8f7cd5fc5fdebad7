/**
 * A connector option error is a config error of `dativo validate` and
 * `dativo run`: file, key and YAML line, exit 3, and nothing created — no
 * warehouse, no state, no rejects — because loadJob checks the options
 * before anything runs.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dativo, jsonLine, ordersJob, ordersProject, type Project } from './helpers.js';

let pr: Project;

before(async () => {
  pr = await ordersProject('connector-options');
  // ordersJob: line 6 is `  files: [...]`; the bad options follow it.
  await pr.write('bad.yaml', ordersJob().replace('  files: [{path: "data/*.csv", object: orders}]\n', '  files: [{path: "data/*.csv", object: orders}]\n  delimitr: ";"\n  engine: {options: {native: {quote_char: "<>"}}}\n'));
});

after(async () => {
  await pr?.cleanup();
});

describe('connector options in the CLI', () => {
  it('dativo validate: exit 3 listing both problems with file, key, line, and the valid options', async () => {
    const r = await dativo(['validate', 'bad.yaml'], { cwd: pr.dir });
    assert.equal(r.code, 3, r.stderr);
    assert.match(r.stderr, /^invalid: bad\.yaml\n/);
    assert.ok(r.stderr.includes(`${pr.p('bad.yaml')}: source.delimitr: unknown option of connector "csv"`), r.stderr);
    assert.match(r.stderr, /source\.delimitr: [^\n]*valid options: [^\n]*\bfiles\b[^\n]*\(line 7\)/);
    assert.match(r.stderr, /source\.engine\.options\.native\.quote_char: must be one character \(line 8\)/);
  });

  it('dativo run: exit 3 CONFIG_INVALID, no warehouse, state or reject folder created', async () => {
    const r = await dativo(['run', 'bad.yaml', '--json'], { cwd: pr.dir });
    assert.equal(r.code, 3, r.stderr);
    const s = jsonLine(r.stdout);
    assert.equal(s.error?.code, 'CONFIG_INVALID');
    assert.deepEqual(s.error?.problems?.map((p) => p.key).sort(), ['source.delimitr', 'source.engine.options.native.quote_char']);
    for (const dir of ['wh', 'state', 'rejects']) assert.equal(existsSync(pr.p(dir)), false, `${dir} was created`);
  });
});
