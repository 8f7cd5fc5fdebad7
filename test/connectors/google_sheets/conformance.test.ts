/**
 * The shared conformance suite (test/conformance.ts) on the Google Sheets
 * source: the real clients against the Sheets fake, plans loaded from a job
 * file. Incremental state is the spreadsheets' Drive modifiedTime (through
 * `checkpoint()`); after an edit the whole sheet comes again (an overwrite
 * snapshot). Resources: the read's keep-alive connections to the fake.
 */
import { getConnector } from '../../../connectors/index.js';
import { loadJob } from '../../../lib/config/index.js';
import type { Row } from '../../../lib/types.js';
import { describeConnectorConformance } from '../../conformance.js';
import { SheetsFake } from '../../fakes/sheets.js';
import { BUDGET_HEADER, budgetLine, budgetSheet, sheetsProject, type SheetsProject } from './helpers.js';

const fake = new SheetsFake();
let p: SheetsProject;
let lines = 0;

/** A budget line as the connector emits it (before validate): serials converted, numbers as read. */
function emitted(i: number): Row {
  const cells = budgetLine(i);
  const row: Row = {};
  BUDGET_HEADER.forEach((name, j) => {
    const c = cells[j];
    if (c === null || c === undefined || c === '') row[String(name)] = null;
    else if (typeof c === 'object') row[String(name)] = name === 'month' ? c.serial - 25_569 : BigInt(Math.round((c.serial - 25_569) * 86_400)) * 1_000_000n;
    else row[String(name)] = c;
  });
  return row;
}

describeConnectorConformance('google_sheets', {
  before: async () => {
    await fake.start();
    p = await sheetsProject(fake, 'sheets-conf');
    await p.job({ windowRows: 100 });
  },
  after: async () => {
    await fake.close();
    await p?.cleanup();
  },
  connector: () => getConnector('google_sheets'),
  makePlan: () => loadJob(p.p('job.yaml'), { cwd: p.dir }),
  seed: async () => {
    fake.reset();
    lines = 130;
    fake.create('budget-1', { sheets: [{ title: 'Budget', rows: budgetSheet(lines), rowCount: 200 }] });
  },
  get expectedRows(): Row[] {
    return Array.from({ length: lines }, (_, k) => emitted(k + 1));
  },
  seedMore: async () => {
    lines = 133;
    fake.setRows('budget-1', 'Budget', budgetSheet(lines));
  },
  // A changed sheet is read whole: the table becomes the sheet as it is now.
  get moreRows(): Row[] {
    return Array.from({ length: lines }, (_, k) => emitted(k + 1));
  },
  seedMany: async () => {
    fake.reset();
    fake.create('budget-1', { sheets: [{ title: 'Budget', rows: budgetSheet(3000), rowCount: 3001 }] });
  },
  badCheck: {
    makePlan: async () => {
      const file = await p.job({ windowRows: 100, sheets: [{ spreadsheet_id: 'no-such-spreadsheet', range: 'Budget' }] });
      try {
        return await loadJob(file, { cwd: p.dir });
      } finally {
        await p.job({ windowRows: 100 });
      }
    },
    code: 'SOURCE_NOT_FOUND',
  },
  incremental: { kind: 'files' },
  // Sockets an earlier read closed reach the server's 'close' a moment later: let them.
  resourcesOpen: async () => {
    await new Promise((r) => setTimeout(r, 50));
    return fake.openConnections();
  },
});
