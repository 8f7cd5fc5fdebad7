/**
 * On a terminal, `dativo run` keeps a live progress line (rows, rows/s) on
 * stderr, rewritten in place with `\r` about twice a second. The terminal is
 * a real pseudo-TTY made by util-linux `script`.
 */
import { spawn, spawnSync } from 'node:child_process';
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { dativoArgv, ordersProject, ORDERS_HEADER, type Project } from './helpers.js';

const hasScript = spawnSync('script', ['--version']).status === 0;
let pr: Project;
const ROWS = 200_000;

before(async () => {
  // Large enough that the run outlasts a few 500 ms progress ticks.
  const lines = [ORDERS_HEADER];
  for (let i = 1; i <= ROWS; i++) lines.push(`${i},${i % 1000}.25,2024-01-01T00:00:00Z,2024-01-02,r${i}`);
  pr = await ordersProject('tty', { rows: lines.slice(1) });
});

after(async () => {
  await pr?.cleanup();
});

it('a pseudo-TTY gets a live progress line with rows and rows/s, cleared at the end', { skip: hasScript ? false : 'util-linux script is not installed' }, async () => {
  const command = [process.execPath, ...dativoArgv(['run', 'job.yaml', '--log-level', 'warn'])].join(' ');
  const out = await new Promise<{ code: number | null; text: string }>((resolve, reject) => {
    // -e: exit with the child's code; -q: no banner; the typescript goes to /dev/null.
    const child = spawn('script', ['-qec', command, '/dev/null'], { cwd: pr.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    child.stdout.on('data', (c: Buffer) => (text += c.toString()));
    child.stderr.on('data', (c: Buffer) => (text += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, text });
    });
  });
  assert.equal(out.code, 0, out.text);
  const ticks = [...out.text.matchAll(/\rorders: ([\d,]+) rows read, ([\d,]+) rows\/s/g)].map((m) => [Number(m[1]!.replaceAll(',', '')), Number(m[2]!.replaceAll(',', ''))]);
  assert.ok(ticks.length >= 1, `no progress line in ${JSON.stringify(out.text.slice(0, 500))}`);
  for (const [rows, rate] of ticks) {
    assert.ok(rows! > 0 && rows! <= ROWS && rate! > 0, String([rows, rate]));
  }
  for (let i = 1; i < ticks.length; i++) assert.ok(ticks[i]![0]! >= ticks[i - 1]![0]!, 'rows only grow');
  // The line is blanked before the summary is printed.
  assert.match(out.text, /\r {10,}\r(\r?\n)?run \S+ of t1\/job: exit 0/);
  assert.match(out.text, new RegExp(`orders: ${ROWS.toLocaleString('en-US')} read, ${ROWS.toLocaleString('en-US')} written`));
});
