/**
 * Writes the demo's `pipelines/demo/data/orders.csv`: 100,000 synthetic orders,
 * the same bytes on every machine (seeded PRNG, no clock, no Math.random).
 *
 * The file exercises what an ingestion engine most often gets wrong: order
 * ids beyond 2^53, exact decimal amounts (negative for refunds), unicode and
 * commas in e-mail addresses, timestamps with `Z`, `+05:30`, `-08:00` offsets
 * and microseconds, NULL notes (unquoted empty field) next to empty-string
 * notes (quoted `""`), and notes with quotes and line breaks.
 *
 * An existing file is left alone (not even its mtime changes), so a second
 * `npm start` finds nothing new to ingest. The file is written to a temporary
 * name and renamed, so an interrupted run never leaves half a file behind.
 *
 * Usage: `node --import tsx pipelines/demo/generate-orders.ts [out.csv] [rows]`
 * (`--help` prints it; an unknown flag is an error, exit 2).
 */
import { once } from 'node:events';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, rename, stat, unlink } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Rows written by default. */
export const DEFAULT_ROWS = 100_000;
/** PRNG seed: change it and every byte of the file changes. */
export const DEFAULT_SEED = 20261127;

/** mulberry32: a small, fast, well-distributed 32-bit PRNG. */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The CSV header. */
export const ORDER_COLUMNS = [
  'order_id',
  'customer_email',
  'amount',
  'currency',
  'status',
  'created_at',
  'order_date',
  'note',
  'quantity',
  'is_gift',
] as const;

const CURRENCIES = ['EUR', 'USD', 'GBP', 'INR', 'JPY', 'CHF'];
const STATUSES = ['paid', 'paid', 'paid', 'shipped', 'pending', 'cancelled'];
const OFFSETS = [
  { text: 'Z', minutes: 0 },
  { text: '+05:30', minutes: 330 },
  { text: '-08:00', minutes: -480 },
  { text: '+01:00', minutes: 60 },
  { text: '+09:00', minutes: 540 },
  { text: '-03:00', minutes: -180 },
];
const NOTES = ['leave at the door', 'gift wrap, please', 'said "thanks!"', 'call before\ndelivery', 'zoë will pick it up', '请尽快发货', '🎁 surprise'];
const FIRST_ORDER_ID = 1_000_000n;
/** 2^53 + 1: the first integer a JS number cannot hold. */
const BEYOND_2_53 = 9_007_199_254_740_993n;
/** 2025-01-01T00:00:00Z in seconds: created_at spans the 700 days after it. */
const START_SECONDS = 1_735_689_600;

function csvField(s: string): string {
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

/** Exact decimal text of an integer number of cents: -1234 → "-12.34". */
export function centsToDecimal(cents: number): string {
  const sign = cents < 0 ? '-' : '';
  const abs = Math.abs(cents);
  return `${sign}${Math.floor(abs / 100)}.${pad(abs % 100)}`;
}

/** One CSV line (without the line break) of order `i`, drawing from `rnd`. */
export function orderLine(i: number, rnd: () => number): string {
  const r = (n: number): number => Math.floor(rnd() * n);
  const orderId = i % 10 === 7 ? BEYOND_2_53 + BigInt(i) : FIRST_ORDER_ID + BigInt(i);

  const kind = r(20);
  const user = `${r(50_000)}`;
  const email =
    kind === 0 ? `zoë.${user}@example.de` : kind === 1 ? `张伟${user}@例子.中国` : kind === 2 ? `party🎉${user}@example.com` : kind === 3 ? `"last, first ${user}"@example.org` : `user${user}@example.com`;

  const status = STATUSES[r(STATUSES.length)]!;
  const refund = r(20) === 0;
  let cents = r(100) === 0 ? r(2_000_000_000) * 50 + r(50) : r(250_000) + 1;
  if (refund) cents = -cents;
  const currency = CURRENCIES[r(CURRENCIES.length)]!;

  const offset = OFFSETS[r(OFFSETS.length)]!;
  const utcSeconds = START_SECONDS + r(700 * 86_400);
  // Wall-clock time at that offset, written with the offset: the same instant.
  const local = new Date((utcSeconds + offset.minutes * 60) * 1000);
  const precision = r(3);
  const fraction = precision === 0 ? '' : precision === 1 ? `.${pad(r(1000), 3)}` : `.${pad(r(1_000_000), 6)}`;
  const date = `${local.getUTCFullYear()}-${pad(local.getUTCMonth() + 1)}-${pad(local.getUTCDate())}`;
  const createdAt = `${date}T${pad(local.getUTCHours())}:${pad(local.getUTCMinutes())}:${pad(local.getUTCSeconds())}${fraction}${offset.text}`;

  const noteKind = r(10);
  // Unquoted empty = NULL; quoted "" = empty string.
  const note = noteKind < 4 ? '' : noteKind === 4 ? '""' : csvField(NOTES[r(NOTES.length)]!);
  const quantity = 1 + r(r(10) === 0 ? 200 : 5);
  const isGift = r(8) === 0 ? 'true' : 'false';

  return [orderId.toString(), csvField(email), centsToDecimal(cents), currency, refund ? 'refunded' : status, createdAt, date, note, String(quantity), isGift].join(',');
}

/**
 * Write `rows` orders to `path` unless the file exists.
 * @returns whether the file was written.
 */
export async function generateOrders(path: string, rows = DEFAULT_ROWS, seed = DEFAULT_SEED): Promise<boolean> {
  if (existsSync(path)) return false;
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  const out = createWriteStream(tmp, { flags: 'wx' });
  try {
    const rnd = mulberry32(seed);
    let chunk = `${ORDER_COLUMNS.join(',')}\n`;
    for (let i = 0; i < rows; i++) {
      chunk += `${orderLine(i, rnd)}\n`;
      if (chunk.length > 1 << 16) {
        if (!out.write(chunk)) await once(out, 'drain');
        chunk = '';
      }
    }
    out.end(chunk);
    await once(out, 'finish');
    await rename(tmp, path);
  } catch (err) {
    out.destroy();
    await unlink(tmp).catch(() => undefined);
    throw err;
  }
  return true;
}

/** The repository root: the nearest folder above this file with a package.json (works from dist/ too). */
function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return process.cwd();
    dir = up;
  }
}

/** Default output: `<repo>/pipelines/demo/data/orders.csv`. */
export function defaultOrdersPath(): string {
  return join(repoRoot(), 'pipelines', 'demo', 'data', 'orders.csv');
}

/** The command line's usage text. */
export const USAGE = `Usage: node --import tsx pipelines/demo/generate-orders.ts [options] [out.csv] [rows]

Writes ${DEFAULT_ROWS.toLocaleString('en-US')} synthetic orders (or [rows]) to out.csv
(default: pipelines/demo/data/orders.csv), the same bytes on every machine.
An existing file is left as it is.

Options:
  -h, --help   print this help and exit
  --           end of options: a file name after it may start with "-"
`;

/** What the command line asks for: help, a generation, or a usage error. */
export type GenerateArgs = { kind: 'help' } | { kind: 'generate'; path: string; rows: number } | { kind: 'error'; message: string };

/**
 * Parse the command line (the arguments after the script). `path` is
 * resolved against the working directory; default {@link defaultOrdersPath};
 * rows default {@link DEFAULT_ROWS}. Anything starting with `-` before `--`
 * other than `-h`/`--help` is an unknown option, so a typo never becomes a
 * file name.
 */
export function parseGenerateArgs(argv: readonly string[]): GenerateArgs {
  const positional: string[] = [];
  let options = true;
  for (const arg of argv) {
    if (options && arg === '--') options = false;
    else if (options && (arg === '-h' || arg === '--help')) return { kind: 'help' };
    else if (options && arg.startsWith('-')) return { kind: 'error', message: `unknown option ${arg}` };
    else positional.push(arg);
  }
  if (positional.length > 2) return { kind: 'error', message: `too many arguments: ${positional.slice(2).join(' ')}` };
  const [out, rowsText] = positional;
  if (out === '') return { kind: 'error', message: 'the output file name is empty' };
  let rows = DEFAULT_ROWS;
  if (rowsText !== undefined) {
    if (!/^\d+$/.test(rowsText) || !Number.isSafeInteger(Number(rowsText))) {
      return { kind: 'error', message: `rows must be a whole number, got ${JSON.stringify(rowsText)}` };
    }
    rows = Number(rowsText);
  }
  return { kind: 'generate', path: resolve(out ?? defaultOrdersPath()), rows };
}

/** Generate and report on stderr (exit code 1 on failure). */
function main(path: string, rows: number): void {
  generateOrders(path, rows).then(
    async (written) => {
      const size = (await stat(path)).size;
      process.stderr.write(written ? `wrote ${rows} orders to ${path} (${size} bytes)\n` : `${path} exists (${size} bytes); left as is\n`);
    },
    (err: unknown) => {
      process.stderr.write(`generate-orders: ${(err as Error).message}\n`);
      process.exitCode = 1;
    },
  );
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const args = parseGenerateArgs(process.argv.slice(2));
  if (args.kind === 'help') {
    process.stdout.write(USAGE);
  } else if (args.kind === 'error') {
    process.stderr.write(`generate-orders: ${args.message}\n\n${USAGE}`);
    process.exitCode = 2;
  } else {
    main(args.path, args.rows);
  }
}
