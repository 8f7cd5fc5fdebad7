/**
 * The CSV connector runs the conformance suite every connector runs: once
 * with new data as a new file, once with new rows appended to a file already
 * read (which must yield exactly the appended rows).
 */
import { appendFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getConnector } from '../../../connectors/index.js';
import { describeConnectorConformance, type ConformanceSetup } from '../../conformance.js';
import { makeCsvPlan, openFdsUnder } from './helpers.js';

let dir = '';

/** The suite over one folder of CSV files; the two runs differ only in how new rows arrive. */
function describeCsvConformance(name: string, more: Pick<ConformanceSetup, 'seedMore' | 'moreRows'>): void {
  describeConnectorConformance(name, {
    before: async () => {
      dir = await mkdtemp(join(tmpdir(), 'dativo-csv-conf-'));
    },
    after: async () => {
      await rm(dir, { recursive: true, force: true });
    },
    connector: () => getConnector('csv'),
    makePlan: () => makeCsvPlan({ dir, files: [{ path: 'orders/*.csv', object: 'orders' }] }),
    seed: async () => {
      await rm(join(dir, 'orders'), { recursive: true, force: true });
      await mkdir(join(dir, 'orders'));
      await writeFile(join(dir, 'orders', '2026-01.csv'), 'id,note\n1,first\n2,""\n3,\n');
      await writeFile(join(dir, 'orders', '2026-02.csv'), 'id,note\n4,"multi\nline"\n');
    },
    expectedRows: [
      { id: '1', note: 'first' },
      { id: '2', note: '' },
      { id: '3', note: null },
      { id: '4', note: 'multi\nline' },
    ],
    ...more,
    seedMany: async () => {
      await rm(join(dir, 'orders'), { recursive: true, force: true });
      await mkdir(join(dir, 'orders'));
      await writeFile(join(dir, 'orders', 'big.csv'), `id,note\n${Array.from({ length: 20_000 }, (_, i) => `${i},n${i}`).join('\n')}\n`);
    },
    badCheck: {
      makePlan: () => makeCsvPlan({ dir, files: [{ path: 'no-such-folder/*.csv', object: 'orders' }] }),
      code: 'SOURCE_NOT_FOUND',
    },
    incremental: { kind: 'files' },
    resourcesOpen: () => openFdsUnder(dir),
  });
}

describeCsvConformance('csv', {
  seedMore: async () => {
    await writeFile(join(dir, 'orders', '2026-03.csv'), 'id,note\n5,new\n6,zoë\n');
  },
  moreRows: [
    { id: '5', note: 'new' },
    { id: '6', note: 'zoë' },
  ],
});

describeCsvConformance('csv (rows appended to a file)', {
  seedMore: async () => {
    await appendFile(join(dir, 'orders', '2026-01.csv'), '5,new\n6,"zoë\nwrote"\n');
  },
  moreRows: [
    { id: '5', note: 'new' },
    { id: '6', note: 'zoë\nwrote' },
  ],
});
