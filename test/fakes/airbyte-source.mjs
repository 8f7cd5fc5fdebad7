#!/usr/bin/env node
/**
 * An Airbyte source for the tests, written from the Airbyte protocol
 * reference (docs.airbyte.com/understanding-airbyte/airbyte-protocol):
 * `spec`, `check --config`, `discover --config`, `read --config --catalog
 * [--state]`, one AirbyteMessage per line on stdout. STATE per stream
 * (default), GLOBAL or LEGACY (`config.state_type`), LOG lines, and TRACE
 * errors (`config.trace`: config_error | transient_error | system_error,
 * after `fail_after` records). What it emits is set in its config: see
 * tap-data.mjs. Bookmarks: `{"id": <last id>}` per stream.
 */
import { emit, out, parseArgs, readJson, register, schema } from './tap-data.mjs';

const [command, ...rest] = process.argv.slice(2);
const args = parseArgs(rest);
const line = (m) => `${JSON.stringify(m)}`;
const now = 1767225600000;

if (command === 'spec') {
  await out(`${line({ type: 'LOG', log: { level: 'INFO', message: 'spec requested' } })}\n`);
  await out(
    `${line({
      type: 'SPEC',
      spec: {
        documentationUrl: 'https://example.com/fake-source',
        connectionSpecification: {
          $schema: 'http://json-schema.org/draft-07/schema#',
          type: 'object',
          required: ['api_key', 'streams'],
          properties: { api_key: { type: 'string', airbyte_secret: true }, streams: { type: 'object' }, start_date: { type: 'string', format: 'date-time' } },
        },
      },
    })}\n`,
  );
  process.exit(0);
}

const config = readJson(args.config);
register(config, args.config);
const names = Object.keys(config.streams ?? {});

if (command === 'check') {
  const ok = config.api_key !== 'bad';
  await out(`${line({ type: 'CONNECTION_STATUS', connectionStatus: { status: ok ? 'SUCCEEDED' : 'FAILED', ...(ok ? {} : { message: 'API key is not valid' }) } })}\n`);
  process.exit(0);
}

if (command === 'discover') {
  const streams = names.map((n) => ({
    name: n,
    json_schema: config.schema_override?.[n] ?? schema,
    supported_sync_modes: ['full_refresh', 'incremental'],
    source_defined_cursor: true,
    default_cursor_field: ['id'],
    source_defined_primary_key: [['id']],
  }));
  await out(`${line({ type: 'CATALOG', catalog: { streams } })}\n`);
  process.exit(0);
}

if (command !== 'read') {
  process.stderr.write(`unknown command ${command}\n`);
  process.exit(2);
}

const catalog = readJson(args.catalog);
const selected = config.mode === 'ignore_selection' ? names : catalog.streams.map((s) => s.stream.name);
const stateType = config.state_type ?? 'STREAM';
const bookmarks = {};
if (args.state) {
  const st = readJson(args.state);
  if (Array.isArray(st)) {
    for (const m of st) {
      if (m.type === 'STREAM') bookmarks[m.stream.stream_descriptor.name] = m.stream.stream_state;
      if (m.type === 'GLOBAL') for (const s of m.global.stream_states) bookmarks[s.stream_descriptor.name] = s.stream_state;
    }
  } else Object.assign(bookmarks, st.bookmarks ?? {});
}
await out(`${line({ type: 'LOG', log: { level: 'INFO', message: `reading ${selected.join(', ')} from ${JSON.stringify(bookmarks)}` } })}\n`);
await out(`${line({ type: 'LOG', log: { level: 'WARN', message: 'fake source warning' } })}\n`);

const stateMessage = (b, s) => {
  if (stateType === 'GLOBAL') {
    return line({
      type: 'STATE',
      state: { type: 'GLOBAL', global: { shared_state: { lsn: 'LSN_BIG' }, stream_states: Object.entries(b).map(([n, v]) => ({ stream_descriptor: { name: n }, stream_state: v })) } },
    }).replace('"LSN_BIG"', '18446744073709551615');
  }
  if (stateType === 'LEGACY') return line({ type: 'STATE', state: { data: { bookmarks: b } } });
  return line({ type: 'STATE', state: { type: 'STREAM', stream: { stream_descriptor: { name: s }, stream_state: b[s] } } });
};

if (config.trace) {
  const failAfter = config.fail_after ?? 0;
  config.mode = 'trace';
  config.fail_after = Infinity;
  let n = 0;
  await emit(config, selected, bookmarks, {
    schema: () => line({ type: 'TRACE', trace: { type: 'STREAM_STATUS', emitted_at: now, stream_status: { status: 'STARTED' } } }),
    record: (s, json) => {
      n++;
      if (n === failAfter + 1) {
        process.stdout.write(`${line({ type: 'TRACE', trace: { type: 'ERROR', emitted_at: now, error: { message: `fake ${config.trace}`, internal_message: 'internal detail', failure_type: config.trace } } })}\n`, () => process.exit(1));
      }
      return `{"type":"RECORD","record":{"stream":${JSON.stringify(s)},"data":${json},"emitted_at":${now}}}`;
    },
    state: stateMessage,
    rawState: (json) => `{"type":"STATE","state":{"data":${json}}}`,
  });
  process.exit(1);
}

await emit(config, selected, bookmarks, {
  schema: () => line({ type: 'TRACE', trace: { type: 'STREAM_STATUS', emitted_at: now, stream_status: { status: 'STARTED' } } }),
  record: (s, json) => `{"type":"RECORD","record":{"stream":${JSON.stringify(s)},"data":${json},"emitted_at":${now}}}`,
  state: stateMessage,
  rawState: (json) => `{"type":"STATE","state":{"data":${json}}}`,
});
