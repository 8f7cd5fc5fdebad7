/**
 * The shared conformance suite (test/conformance.ts) on gdrive_csv: the real
 * @googleapis/drive client against the Google fake, plans loaded from a job
 * file reading one shared folder (pages of 1 file, some empty). Resources:
 * downloads still being sent by the fake.
 */
import { getConnector } from '../../../connectors/index.js';
import { loadJob } from '../../../lib/config/index.js';
import type { Row } from '../../../lib/types.js';
import { describeConnectorConformance } from '../../conformance.js';
import { GoogleFake, generatedCsv, type FakeFile } from '../../fakes/google.js';
import { gdriveProject, HEADER, orders, type GdriveProject } from './helpers.js';

const fake = new GoogleFake();
let p: GdriveProject;
/** The folder's id stays the same across seeds (the job names it). */
const FOLDER = '1OrdersFolder_acme';
let a: FakeFile;

/** The raw records of CSV lines, as the CSV parser emits them (unquoted empty → null, `""` → ''). */
function rowsOf(csv: string): Row[] {
  const lines = csv.split('\n').filter((l) => l !== '');
  return lines.map((l) => {
    const [order_id, customer_email, amount, currency, created_at, note] = l.split(',');
    return { order_id, customer_email, amount, currency, created_at, note: note === '' ? null : note === '""' ? '' : note } as Row;
  });
}

describeConnectorConformance('gdrive_csv', {
  before: async () => {
    await fake.start();
    p = await gdriveProject(fake, 'gdrive-conf');
  },
  after: async () => {
    await fake.close();
    await p?.cleanup();
  },
  connector: () => getConnector('gdrive_csv'),
  makePlan: async () => {
    await p.job({ source: [`folder_id: ${FOLDER}`, 'page_size: 1'] });
    return loadJob(p.p('job.yaml'), { cwd: p.dir, secretsDir: p.p('secrets') });
  },
  seed: async () => {
    fake.reset();
    fake.pageSizes = [1, 0, 1, 0, 0, 1];
    const folder = fake.addFolder('orders', [p.account.email], { id: FOLDER });
    a = fake.addFile({ name: 'a.csv', parents: [folder.id], content: Buffer.from(HEADER + orders(0, 3)) });
    fake.addFile({ name: 'b.csv', parents: [folder.id], content: Buffer.from(HEADER + orders(3, 5)) });
    fake.addFile({ name: 'notes.txt', mimeType: 'text/plain', parents: [folder.id], content: Buffer.from('not a csv\n') });
  },
  get expectedRows(): Row[] {
    return rowsOf(orders(0, 5));
  },
  seedMore: async () => {
    fake.appendContent(a.id, orders(5, 6));
    fake.addFile({ name: 'c.csv', parents: [FOLDER], content: Buffer.from(HEADER + orders(6, 8)) });
  },
  get moreRows(): Row[] {
    return rowsOf(orders(5, 8));
  },
  seedMany: async () => {
    fake.reset();
    const folder = fake.addFolder('orders', [p.account.email], { id: FOLDER });
    // The job's own columns: a header without the asset's required ones fails the file.
    const pad = (i: number): string => String(i).padStart(10, '0');
    const big = generatedCsv(200_000, { shape: { header: HEADER, rowAt: (i) => `${pad(i)},u${pad(i)}@example.com,${String(i % 1000).padStart(3, '0')}.00,EUR,2024-01-01T00:00:00Z,n\n` } });
    fake.addFile({ name: 'big.csv', parents: [folder.id], content: big });
  },
  badCheck: {
    makePlan: async () => {
      const hidden = fake.addFolder('not shared');
      await p.job({ source: [`folder_id: ${hidden.id}`] });
      return loadJob(p.p('job.yaml'), { cwd: p.dir, secretsDir: p.p('secrets') });
    },
    code: 'SOURCE_NOT_FOUND',
  },
  incremental: { kind: 'files' },
  resourcesOpen: async () => {
    // A closed download reaches the server's 'close' a moment later.
    await new Promise((r) => setTimeout(r, 30));
    return fake.activeDownloads();
  },
  normalize: (row) => {
    const { order_id, customer_email, amount, currency, created_at, note } = row as Record<string, unknown>;
    return { order_id, customer_email, amount, currency, created_at, note };
  },
});
