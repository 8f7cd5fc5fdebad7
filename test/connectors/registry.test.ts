/** The connector registry: built-ins by name, third-party modules by path, clear errors. */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { builtinConnectorNames, getConnector, isConnectorPath, listConnectors } from '../../connectors/index.js';
import { DativoError } from '../../lib/errors.js';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'dativo-registry-'));
  const body = (exp: string) =>
    `const c = { descriptor: Object.freeze({ name: 'mine', roles: ['source'], allowedInCloud: true, incrementalStrategies: [], sortedByCursor: false, description: 'x' }), read() { throw new Error('unused'); } };\n${exp}\n`;
  await writeFile(join(dir, 'default.mjs'), body('export default c;'));
  await writeFile(join(dir, 'named.mjs'), body('export const connector = c;'));
  await writeFile(join(dir, 'broken.mjs'), 'export default { descriptor: { roles: "source" } };\n');
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

function unknown(pattern: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(err instanceof DativoError, String(err));
    assert.equal(err.code, 'CONNECTOR_UNKNOWN');
    assert.match(err.message, pattern);
    return true;
  };
}

describe('connector registry', () => {
  it('loads a built-in by name', async () => {
    const c = await getConnector('csv');
    assert.equal(c.descriptor.name, 'csv');
    assert.ok(Object.isFrozen(c.descriptor));
    assert.ok(builtinConnectorNames().includes('csv'));
    assert.ok((await listConnectors()).some((d) => d.name === 'csv'));
  });

  it('an unknown name lists the known ones', async () => {
    await assert.rejects(getConnector('salesforce'), unknown(/unknown connector "salesforce".*known connectors: .*csv/));
    await assert.rejects(getConnector('constructor'), unknown(/unknown connector/));
  });

  it('loads a third-party module by path: default export or named `connector`', async () => {
    assert.equal((await getConnector(join(dir, 'default.mjs'))).descriptor.name, 'mine');
    assert.equal((await getConnector('./named.mjs', { cwd: dir })).descriptor.name, 'mine');
  });

  it('a module that is missing or not a connector is CONNECTOR_UNKNOWN saying why', async () => {
    await assert.rejects(getConnector('./nope.mjs', { cwd: dir }), unknown(/cannot load connector module/));
    await assert.rejects(getConnector(join(dir, 'broken.mjs')), unknown(/descriptor.name.*roles.*read\(\)/));
  });

  it('tells paths from names', () => {
    for (const p of ['./x', '../x', '/abs/x', 'x.js', 'x.mjs', 'x.ts', 'C:\\x']) assert.equal(isConnectorPath(p), true, p);
    for (const n of ['csv', 'postgres', 'google_sheets']) assert.equal(isConnectorPath(n), false, n);
  });
});
