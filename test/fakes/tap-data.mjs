/**
 * What the fake taps (singer-tap.mjs, airbyte-source.mjs) emit, shared by
 * both: deterministic records per stream (ids 1..count), their JSON Schema,
 * and the behaviours the tests ask for in the tap's config (`mode`).
 * Plain Node (no tsx) so a tap starts in a few tens of milliseconds.
 *
 * Records: {id, name, updated_at, big, amount}; `big` is 2^53 + id, written
 * as a JSON number with all its digits (a JS number could not hold it).
 */
import { readFileSync, writeFileSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';

export const schema = Object.freeze({
  type: 'object',
  properties: {
    id: { type: 'integer' },
    name: { type: ['null', 'string'] },
    updated_at: { type: 'string', format: 'date-time' },
    big: { type: 'integer' },
    amount: { type: ['null', 'string'] },
  },
  required: ['id', 'updated_at'],
});

const BASE = Date.UTC(2026, 0, 1);
const TWO_53 = 9007199254740992n;

/** One record's JSON text (not JSON.stringify: `big` keeps every digit). */
export function recordJson(stream, id) {
  const ts = new Date(BASE + id * 1000).toISOString().replace('Z', '123Z');
  return `{"id":${id},"name":${JSON.stringify(`${stream} ${id} ü`)},"updated_at":"${ts}","big":${TWO_53 + BigInt(id)},"amount":"${id}.50"}`;
}

/** argv → {flag: value} for --config/--catalog/--properties/--state, plus bare flags. */
export function parseArgs(argv) {
  const out = { _: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a.startsWith('--')) {
      const next = argv[i + 1];
      if (next !== undefined && !next.startsWith('--')) {
        out[a.slice(2)] = next;
        i++;
      } else out[a.slice(2)] = true;
    } else out._.push(a);
  }
  return out;
}

export const readJson = (p) => JSON.parse(readFileSync(p, 'utf8'));

/**
 * Record this process for the tests: its pid (file name), the folder of its
 * config file and the permission bits of both, and its argv.
 */
export function register(config, configPath) {
  if (!config.registry) return;
  mkdirSync(config.registry, { recursive: true });
  const dir = path.dirname(configPath);
  const info = { dir, dirMode: statSync(dir).mode & 0o777, configMode: statSync(configPath).mode & 0o777, argv: process.argv.slice(2) };
  writeFileSync(path.join(config.registry, String(process.pid)), JSON.stringify(info));
}

/** Write `text` to stdout, waiting for the pipe when it is full (real backpressure). */
export function out(text) {
  if (process.stdout.write(text)) return Promise.resolve();
  return new Promise((resolve) => process.stdout.once('drain', resolve));
}

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Emit the selected streams: batches of `config.batch` records (default
 * 500), a state after each (or before it, mode `state_first`), failing the
 * way `config.mode` says once `config.fail_after` records are out.
 * `msg` turns protocol events into lines: {record(stream, json), state(bookmarks, stream), schema(stream), log(text)}.
 */
export async function emit(config, streams, bookmarks, msg) {
  const counts = config.streams ?? {};
  const batch = config.batch ?? 500;
  const mode = config.mode ?? 'normal';
  const failAfter = config.fail_after ?? Infinity;
  let emitted = 0;
  const fail = async () => {
    switch (mode) {
      case 'crash':
        // A careless tap that prints its credential (our log and error must mask it).
        if (config.echo_secret) process.stderr.write(`ERROR request refused, api_key=${config.api_key}\n`);
        process.stderr.write('Traceback (most recent call last):\nRuntimeError: boom\n');
        process.exit(1);
        break;
      case 'kill':
        process.kill(process.pid, 'SIGKILL');
        await sleep(10_000);
        break;
      case 'hang':
        process.stderr.write('INFO waiting for the API forever\n');
        await new Promise(() => setInterval(() => undefined, 1000));
        break;
      case 'garbage':
        await out('Oops, this is not JSON\n');
        break;
      case 'bad_state':
        await out('{"type": "STATE", "value": {"bookmarks": {"customers": \n');
        break;
      case 'huge':
        await out(`${msg.record(streams[0], `{"id":999999,"name":"${'x'.repeat(2 * 1024 * 1024)}","updated_at":"2026-01-01T00:00:00Z"}`)}\n`);
        break;
      case 'undeclared':
        for (let i = 1; i <= 3; i++) await out(`${msg.record('ghost', `{"id":${i}}`)}\n`);
        break;
      case 'oversized_state':
        await out(`${msg.rawState(`{"pad":"${'x'.repeat(2 * 1024 * 1024)}"}`)}\n`);
        break;
    }
  };
  let failed = false;
  for (const s of streams) await out(`${msg.schema(s)}\n`);
  // Round robin over the streams, one batch at a time: a multi-stream tap interleaves.
  const next = Object.fromEntries(streams.map((s) => [s, (bookmarks[s]?.id ?? 0) + 1]));
  for (;;) {
    let any = false;
    for (const s of streams) {
      const total = counts[s] ?? 0;
      if (next[s] > total) continue;
      any = true;
      const from = next[s];
      const to = Math.min(total, from + batch - 1);
      const covering = { ...bookmarks, [s]: { id: to } };
      if (mode === 'state_first') await out(`${msg.state(covering, s)}\n`);
      let lines = '';
      for (let id = from; id <= to; id++) {
        lines += `${msg.record(s, recordJson(s, id))}\n`;
        emitted++;
        if (!failed && emitted >= failAfter && mode !== 'normal' && mode !== 'state_first' && mode !== 'ignore_selection') {
          await out(lines);
          lines = '';
          failed = true;
          await fail();
        }
      }
      await out(lines);
      next[s] = to + 1;
      bookmarks[s] = { id: to };
      if (mode !== 'state_first') await out(`${msg.state(bookmarks, s)}\n`);
      process.stderr.write(`INFO emitted ${emitted}\n`);
      if (config.halfway_marker && emitted >= config.halfway_marker && !config._marked) {
        config._marked = true;
        process.stderr.write('INFO tap halfway\n');
      }
      if (config.delay_ms) await sleep(config.delay_ms);
    }
    if (!any) break;
  }
}
