/**
 * On a terminal, `dativo run` keeps a live progress line (rows, rows/s, bytes) on
 * stderr, rewritten in place with `\r` about twice a second. The terminal is
 * a real pseudo-TTY made by util-linux `script`. The same long run, stopped
 * with SIGTERM, exits 2 (ABORTED) leaving no data file and no state.
 */
import { spawn, spawnSync } from 'node:child_process';
import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { dativoArgv, jsonLine, ordersProject, parquetFiles, snapshot, ORDERS_HEADER, type Project } from './helpers.js';

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

/** `dativo <args>` on a pseudo-terminal (util-linux `script`): everything it printed, in order. */
function underScript(args: string[], cwd: string): Promise<{ code: number | null; text: string }> {
  const command = [process.execPath, ...dativoArgv(args)].join(' ');
  return new Promise((resolve, reject) => {
    // -e: exit with the child's code; -q: no banner; the typescript goes to /dev/null.
    const child = spawn('script', ['-qec', command, '/dev/null'], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
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
}

it('SIGTERM mid-run: exit 2 ABORTED, no data file, no state, one --json line still printed', async () => {
  const out = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, dativoArgv(['run', 'job.yaml', '--json']), { cwd: pr.dir, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let sent = false;
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => {
      stderr += c.toString();
      // Once the object is being read, stop the run.
      if (!sent && stderr.includes('"event_type":"object_started"')) {
        sent = true;
        child.kill('SIGTERM');
      }
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
  assert.equal(out.code, 2, out.stderr.slice(-2000));
  const s = jsonLine(out.stdout);
  assert.equal(s.error?.code, 'ABORTED');
  assert.ok(s.objects[0]!.rows_read < ROWS, 'stopped before the end');
  assert.deepEqual(await parquetFiles(pr.p('wh')), [], 'no data file left behind');
  assert.deepEqual(await snapshot(pr.p('state')), {}, 'no state saved');
});

it('a pseudo-TTY gets a live progress line with rows, rows/s and bytes, cleared at the end', { skip: hasScript ? false : 'util-linux script is not installed' }, async () => {
  const out = await underScript(['run', 'job.yaml', '--log-level', 'info'], pr.dir);
  assert.equal(out.code, 0, out.text);
  const ticks = [...out.text.matchAll(/\rorders: ([\d,]+) rows read, ([\d,]+) rows\/s, \d+(?:\.\d)? (?:B|KiB|MiB) written/g)].map((m) => [Number(m[1]!.replaceAll(',', '')), Number(m[2]!.replaceAll(',', ''))]);
  assert.ok(ticks.length >= 1, `no progress line in ${JSON.stringify(out.text.slice(0, 500))}`);
  for (const [rows, rate] of ticks) {
    assert.ok(rows! > 0 && rows! <= ROWS && rate! > 0, String([rows, rate]));
  }
  for (let i = 1; i < ticks.length; i++) assert.ok(ticks[i]![0]! >= ticks[i - 1]![0]!, 'rows only grow');
  // On a terminal the log lines are for a person: `HH:MM:SS LEVEL message key=value`, never JSON.
  assert.doesNotMatch(out.text, /\{"level"/);
  assert.match(out.text, /(^|\n)\d\d:\d\d:\d\d INFO {2}reading orders object=orders full_refresh=false text_path=columnar\r?\n/);
  assert.match(out.text, /\d\d:\d\d:\d\d INFO {2}\S.* object=orders rows_read=200000 /);
  // Log lines never share a line with the progress text: it is blanked before each.
  assert.doesNotMatch(out.text, /rows\/s[^\r\n]*\d\d:\d\d:\d\d (INFO|WARN)/);
  // The line is blanked before the summary is printed.
  assert.match(out.text, /\r {10,}\r(\r?\n)?run \S+ of t1\/job: exit 0/);
  assert.match(out.text, new RegExp(`orders: ${ROWS.toLocaleString('en-US')} read, ${ROWS.toLocaleString('en-US')} written`));
});

it('a pseudo-TTY with --json: JSON log lines, no progress line, one JSON summary line', { skip: hasScript ? false : 'util-linux script is not installed' }, async () => {
  const small = await ordersProject('tty-json');
  const out = await underScript(['run', 'job.yaml', '--json'], small.dir).finally(() => small.cleanup());
  assert.equal(out.code, 0, out.text);
  const lines = out.text.split(/\r?\n/).filter((l) => l !== '');
  assert.doesNotMatch(out.text, /\r[^\n]|rows\/s/, 'no progress line');
  assert.ok(lines.length >= 3, out.text);
  for (const l of lines) assert.ok(l.startsWith('{'), `not JSON: ${l}`);
  const logs = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
  assert.ok(logs.some((l) => l['event_type'] === 'object_finished' && l['object'] === 'orders'));
  assert.ok(logs.some((l) => l['exit_code'] === 0 && Array.isArray(l['objects'])), 'the summary line');
});
