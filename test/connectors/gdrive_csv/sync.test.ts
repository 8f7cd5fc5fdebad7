/**
 * gdrive_csv end to end through runJobFile (the CLI's entry point) against
 * the Google fake: a shared folder read page by page into an Iceberg table
 * with exact values; incremental runs (nothing again, appended rows only via
 * a Range request, a rewritten file refused, a deleted file noted); explicit
 * ids; native Sheets exported or skipped; shared drives; quota errors retried;
 * bad lines to the reject file with their line numbers.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { after, before, beforeEach, describe, it } from 'node:test';
import { GoogleFake, SHEET_MIME, USER_RATE_LIMIT_403 } from '../../fakes/google.js';
import { parquetFiles } from '../../lib/cli/helpers.js';
import { gdriveProject, HEADER, orders, type GdriveProject } from './helpers.js';

const fake = new GoogleFake();
let p: GdriveProject;
const FOLDER = '1AcmeOrdersFolder';

const mediaRequests = () => fake.requests.filter((r) => r.query.get('alt') === 'media');

describe('gdrive_csv sync', () => {
  before(async () => {
    await fake.start();
    p = await gdriveProject(fake, 'gdrive-sync');
  });
  after(async () => {
    await fake.close();
    await p.cleanup();
  });
  beforeEach(async () => {
    fake.reset();
    await p.cleanup();
    p = await gdriveProject(fake, 'gdrive-sync');
  });

  it('reads every CSV of a shared folder, page by page (short and empty pages), exactly typed; other files and Sheets left out', async () => {
    fake.pageSizes = [1, 0, 0, 2, 0, 1];
    fake.addFolder('orders', [p.account.email], { id: FOLDER });
    fake.addFile({ name: '2026-11-01.csv', parents: [FOLDER], content: Buffer.from(HEADER + orders(0, 4)) });
    fake.addFile({ name: '2026-11-02.csv', parents: [FOLDER], content: Buffer.from(HEADER + orders(4, 6)) });
    fake.addFile({ name: '2026-11-03.csv', parents: [FOLDER], driveId: '0AsharedDrive', content: Buffer.from(HEADER + orders(6, 7)) });
    fake.addFile({ name: 'readme.txt', mimeType: 'text/plain', parents: [FOLDER], content: Buffer.from('hello\n') });
    fake.addFile({ name: 'budget', mimeType: SHEET_MIME, parents: [FOLDER], content: Buffer.from('x\n1\n') });
    fake.addFile({ name: 'elsewhere.csv', content: Buffer.from(HEADER + orders(100, 101)) }, [p.account.email]);
    const { summary } = await p.run({ source: [`folder_id: ${FOLDER}`, 'page_size: 2'] });
    assert.equal(summary.exit_code, 0, JSON.stringify(summary.error));
    const rows = (await p.rows()).sort((a, b) => (String(a['order_id']) < String(b['order_id']) ? -1 : 1));
    assert.equal(rows.length, 7);
    assert.equal(String(rows[0]!['order_id']), '9007199254740993', 'a long beyond 2^53, exact');
    assert.equal(String(rows[1]!['amount']), '1.01');
    assert.equal(rows[0]!['note'], null, 'unquoted empty → NULL');
    assert.equal(rows[1]!['note'], '', 'quoted "" → empty string');
    assert.equal(rows[2]!['note'], 'note 2');
    const lists = fake.requests.filter((r) => r.path === '/drive/v3/files');
    assert.ok(lists.length >= 4, `several pages, empty ones included (${lists.length})`);
    assert.ok(lists.every((r) => r.query.get('supportsAllDrives') === 'true' && r.query.get('includeItemsFromAllDrives') === 'true'));
    assert.equal(mediaRequests().length, 3, 'three CSV downloads');
    assert.ok((summary.objects[0] as unknown as { api_calls?: number }).api_calls! >= 5, 'api calls counted');
  });

  it('incremental: nothing again; an appended file gives only its new rows (a Range request after the bytes taken); a rewritten one is refused; a deleted one noted', async () => {
    fake.addFolder('orders', [p.account.email], { id: FOLDER });
    const a = fake.addFile({ name: 'a.csv', parents: [FOLDER], content: Buffer.from(HEADER + orders(0, 3)) });
    const b = fake.addFile({ name: 'b.csv', parents: [FOLDER], content: Buffer.from(HEADER + orders(3, 5)) });
    const job = { source: [`folder_id: ${FOLDER}`] };
    assert.equal((await p.run(job)).summary.exit_code, 0);
    const first = await p.state();
    const mark = first.objects['orders']!.files![`file_${a.id}`]!;
    assert.equal(mark.size, Buffer.byteLength(HEADER + orders(0, 3)));
    assert.equal(mark.modifiedAt, a.modifiedTime);

    const before = mediaRequests().length;
    const second = await p.run(job);
    assert.equal(second.summary.exit_code, 0);
    assert.equal(mediaRequests().length, before, 'unchanged files are not downloaded');
    assert.equal((await p.rows()).length, 5);

    fake.appendContent(a.id, orders(5, 7));
    const third = await p.run(job);
    assert.equal(third.summary.exit_code, 0, JSON.stringify(third.summary.error));
    const rows = await p.rows();
    assert.equal(rows.length, 7, 'only the two appended rows');
    const ranged = mediaRequests().slice(before).map((r) => r.headers['range']);
    const grown = Buffer.byteLength(HEADER + orders(0, 3) + orders(5, 7));
    assert.ok(ranged.includes(`bytes=${mark.size}-${grown - 1}`), `the rest read by Range (${ranged.join(' ')})`);

    fake.setContent(b.id, Buffer.from(HEADER + orders(50, 52)));
    const rewritten = await p.run(job);
    assert.equal(rewritten.summary.exit_code, 3);
    assert.equal(rewritten.summary.error?.code, 'SOURCE_REWRITTEN');
    assert.match(rewritten.summary.error?.message ?? '', new RegExp(`gdrive:${b.id}/b\\.csv`));
    assert.equal((await p.rows()).length, 7, 'nothing committed');

    fake.files.delete(b.id);
    const gone = await p.run(job);
    assert.equal(gone.summary.exit_code, 0, JSON.stringify(gone.summary.error));
    const note = gone.logs.find((l) => l['event_type'] === 'gdrive_files_gone');
    assert.ok(note, 'the deleted file is noted');
    assert.equal(note['deleted_files'], 1);
    assert.deepEqual(note['files'], [b.id]);
    assert.ok((await p.state()).objects['orders']!.files![`file_${b.id}`], 'its mark is kept');
  });

  it('explicit ids (source.files: [{id, object}]); one not shared is exit 3 naming it and the service account', async () => {
    const a = fake.addFile({ name: 'one.csv', content: Buffer.from(HEADER + orders(0, 2)) }, [p.account.email]);
    const ok = await p.run({ source: ['files:', `  - {id: ${a.id}, object: orders}`] });
    assert.equal(ok.summary.exit_code, 0, JSON.stringify(ok.summary.error));
    assert.equal((await p.rows()).length, 2);
    const hidden = fake.addFile({ name: 'hidden.csv', content: Buffer.from(HEADER) });
    const bad = await p.run({ source: ['files:', `  - {id: ${a.id}, object: orders}`, `  - {id: ${hidden.id}, object: orders}`] });
    assert.equal(bad.summary.exit_code, 3);
    assert.equal(bad.summary.error?.code, 'SOURCE_NOT_FOUND');
    assert.match(bad.summary.error?.message ?? '', new RegExp(`file ${hidden.id} does not exist or is not shared with the service account ${p.account.email}: share it with ${p.account.email}`));
  });

  it('a folder that does not exist or is not shared: exit 3 naming it and the service account; nothing written', async () => {
    const r = await p.run({ source: ['folder_id: 1NoSuchFolder'] });
    assert.equal(r.summary.exit_code, 3);
    assert.match(r.summary.error?.message ?? '', new RegExp(`folder 1NoSuchFolder does not exist or is not shared with the service account ${p.account.email}`));
    assert.deepEqual(await parquetFiles(p.p('wh')), []);
  });

  it('native Sheets exported as CSV when configured (skipped without a download when unchanged)', async () => {
    fake.addFolder('orders', [p.account.email], { id: FOLDER });
    const sheet = fake.addFile({ name: 'manual orders', mimeType: SHEET_MIME, parents: [FOLDER], content: Buffer.from(HEADER + orders(0, 2)) });
    const job = { source: [`folder_id: ${FOLDER}`, 'native_sheets: export'] };
    assert.equal((await p.run(job)).summary.exit_code, 0);
    assert.equal((await p.rows()).length, 2);
    const exports = () => fake.requests.filter((r) => r.path.endsWith('/export')).length;
    assert.equal(exports(), 1);
    await p.run(job);
    assert.equal(exports(), 1, 'unchanged modifiedTime: no export');
    fake.appendContent(sheet.id, orders(2, 3));
    assert.equal((await p.run(job)).summary.exit_code, 0);
    assert.equal((await p.rows()).length, 3, 'a row added to the sheet comes once');
  });

  it('quota errors (403 userRateLimitExceeded, 429 with Retry-After) are retried under our policy; spent, exit 2', async () => {
    fake.addFolder('orders', [p.account.email], { id: FOLDER });
    fake.addFile({ name: 'a.csv', parents: [FOLDER], content: Buffer.from(HEADER + orders(0, 3)) });
    fake.fail({ path: '/drive/v3/files', query: { alt: 'media' }, status: 403, body: USER_RATE_LIMIT_403 });
    fake.fail({ path: '/drive/v3/files', status: 429, headers: { 'retry-after': '0' } });
    const job = { source: [`folder_id: ${FOLDER}`], extra: ['retry_config: {max_retries: 3, initial_delay_seconds: 0.01, max_delay_seconds: 0.05}'] };
    const ok = await p.run(job);
    assert.equal(ok.summary.exit_code, 0, JSON.stringify(ok.summary.error));
    assert.equal((await p.rows()).length, 3);
    fake.fail({ path: '/drive/v3/files', status: 403, body: USER_RATE_LIMIT_403, times: 20 });
    const spent = await p.run({ ...job, sync: 'full_refresh' });
    assert.equal(spent.summary.exit_code, 2);
    assert.equal(spent.summary.error?.code, 'RATE_LIMITED');
  });

  it('another delimiter and encoding are configurable; bad lines go to the reject file with their line numbers', async () => {
    fake.addFolder('orders', [p.account.email], { id: FOLDER });
    const latin = Buffer.from('order_id;customer_email;amount;currency;created_at;note\n1;jos\xe9@acme.example;1.00;EUR;2026-11-01T00:00:00Z;caf\xe9\n2;x@acme.example;2.00;EUR\n3;y@acme.example;3.00;EUR;2026-11-01T00:00:00Z;ok\n', 'latin1');
    fake.addFile({ name: 'latin.csv', parents: [FOLDER], content: latin });
    const r = await p.run({ source: [`folder_id: ${FOLDER}`, 'engine: {options: {native: {delimiter: ";", encoding: latin1}}}'], mode: 'warn' });
    assert.equal(r.summary.exit_code, 1, JSON.stringify(r.summary.error));
    const rows = (await p.rows()).sort((a, b) => (String(a['order_id']) < String(b['order_id']) ? -1 : 1));
    assert.deepEqual(rows.map((x) => [String(x['order_id']), x['customer_email'], x['note']]), [
      ['1', 'josé@acme.example', 'café'],
      ['3', 'y@acme.example', 'ok'],
    ]);
    const dir = p.p('rejects/orders');
    const [file] = await readdir(dir);
    const rejects = (await readFile(`${dir}/${file}`, 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(rejects.length, 1);
    assert.equal(rejects[0]!['code'], 'column_count');
    assert.deepEqual((rejects[0]!['location'] as Record<string, unknown>)['line'], 3);
    assert.match(String((rejects[0]!['location'] as Record<string, unknown>)['file']), /^gdrive:.+\/latin\.csv$/);
  });
});
