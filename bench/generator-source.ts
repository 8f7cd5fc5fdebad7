/**
 * The `generator-parquet` scenario's source: a connector of our own (the
 * kind docs/library.md describes) that makes N orders of the demo's column
 * mix (schemas/demo/v1.0/orders.yaml) already in canonical form — bigint ids
 * (one in ten beyond 2^53), exact decimal text, µs timestamps, day numbers,
 * unicode e-mails, NULL and empty notes — so validate passes them through and
 * the run measures the engine from validate to the Parquet files: the
 * writer's ceiling for the CSV path.
 *
 * Each row is a pure function of its index (an integer hash, no PRNG state),
 * so the harness computes the expected totals ({@link expectedTotals})
 * without the files. The harness transpiles this file alone to an ES module
 * for the compiled CLI: it imports nothing at run time.
 *
 *   source: {objects: [{name: orders, rows: 1000000}]}
 */
import { Readable } from 'node:stream';
import type { Connector, ReadContext } from '../lib/connector.js';
import type { Row } from '../lib/types.js';

const FIRST_ORDER_ID = 1_000_000n;
/** 2^53 + 1: the first integer a JS number cannot hold. */
const BEYOND_2_53 = 9_007_199_254_740_993n;
/** 2025-01-01T00:00:00Z in µs; created_at spans the 700 days after it. */
const START_US = 1_735_689_600_000_000n;
const START_DAY = 20089;
const CURRENCIES = ['EUR', 'USD', 'GBP', 'INR', 'JPY', 'CHF'];
const STATUSES = ['paid', 'paid', 'paid', 'shipped', 'pending', 'cancelled'];
const NOTES = ['leave at the door', 'gift wrap, please', 'said "thanks!"', 'call before\ndelivery', 'zoë will pick it up', '请尽快发货', '🎁 surprise'];
const USERS = 50_000;

/** A 32-bit integer hash of (i, salt): every field of a row draws from its own salt. */
function hash(i: number, salt: number): number {
  let h = Math.imul(i ^ salt, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

let emails: string[] | undefined;

/** The e-mail of user u: mostly ASCII, some unicode, some quoted with a comma (as in the demo's CSV). */
function email(u: number): string {
  emails ??= Array.from({ length: USERS }, (_, k) => {
    const kind = hash(k, 7) % 20;
    return kind === 0 ? `zoë.${k}@example.de` : kind === 1 ? `张伟${k}@例子.中国` : kind === 2 ? `party🎉${k}@example.com` : kind === 3 ? `"last, first ${k}"@example.org` : `user${k}@example.com`;
  });
  return emails[u]!;
}

/** The order id of row i. */
export function orderId(i: number): bigint {
  return i % 10 === 7 ? BEYOND_2_53 + BigInt(i) : FIRST_ORDER_ID + BigInt(i);
}

/** The amount of row i in cents (negative for refunds). */
export function amountCents(i: number): number {
  const h = hash(i, 3);
  const cents = h % 100 === 0 ? (h % 2_000_000_000) * 50 + (h % 50) : (h % 250_000) + 1;
  return hash(i, 4) % 20 === 0 ? -cents : cents;
}

/** Row i in canonical form. */
export function orderRow(i: number): Row {
  const cents = amountCents(i);
  const seconds = hash(i, 5) % (700 * 86_400);
  const micros = hash(i, 6) % 1_000_000;
  const noteKind = hash(i, 8) % 10;
  const q = hash(i, 9);
  return {
    order_id: orderId(i),
    customer_email: email(hash(i, 1) % USERS),
    // cents / 100 is the double nearest the decimal; toFixed(2) prints it exactly.
    amount: (cents / 100).toFixed(2),
    currency: CURRENCIES[hash(i, 2) % CURRENCIES.length]!,
    status: cents < 0 ? 'refunded' : STATUSES[hash(i, 10) % STATUSES.length]!,
    created_at: START_US + BigInt(seconds * 1_000_000 + micros),
    order_date: START_DAY + Math.floor(seconds / 86_400),
    note: noteKind < 4 ? null : noteKind === 4 ? '' : NOTES[q % NOTES.length]!,
    quantity: 1 + (q % 10 === 0 ? q % 200 : q % 5),
    is_gift: hash(i, 11) % 8 === 0,
  };
}

/** count(*), sum(order_id), sum(amount) (as text, as DuckDB prints them) of the first `rows` rows. */
export function expectedTotals(rows: number): { rows: string; sum_id: string; sum_amount: string } {
  let ids = 0n;
  let cents = 0n;
  for (let i = 0; i < rows; i++) {
    ids += orderId(i);
    cents += BigInt(amountCents(i));
  }
  const abs = cents < 0n ? -cents : cents;
  const amount = `${cents < 0n ? '-' : ''}${abs / 100n}.${String(abs % 100n).padStart(2, '0')}`;
  return { rows: String(rows), sum_id: ids.toString(), sum_amount: amount };
}

/** The rows of one object, pushed as the consumer asks. */
function rowStream(ctx: ReadContext): Readable {
  const total = Number(ctx.object.config['rows'] ?? 0);
  let i = 0;
  return new Readable({
    objectMode: true,
    highWaterMark: 64,
    signal: ctx.signal,
    read() {
      while (i < total) {
        if (!this.push(orderRow(i++))) return;
      }
      this.push(null);
    },
  });
}

const connector: Connector = {
  descriptor: Object.freeze({
    name: 'bench_generator',
    roles: Object.freeze(['source'] as const),
    allowedInCloud: false,
    incrementalStrategies: Object.freeze([]),
    sortedByCursor: false,
    description: 'N synthetic orders of the demo column mix, canonical values (bench/generator-source.ts)',
  }),
  read: rowStream,
};

export default connector;
