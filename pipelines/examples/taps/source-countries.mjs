#!/usr/bin/env node
/**
 * A small Airbyte source (the Airbyte protocol: spec, check, discover,
 * read; one AirbyteMessage per line): one stream, `countries`, read from
 * the NDJSON file its config names (`{"path": "..."}`), per-stream STATE
 * with the line it got to. airbyte_countries.yaml runs it;
 * docs/connectors/airbyte.md explains it.
 */
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

const [command, ...args] = process.argv.slice(2);
const arg = (name) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : undefined;
};
const emit = (m) => process.stdout.write(`${JSON.stringify(m)}\n`);
const json_schema = {
  type: 'object',
  properties: {
    code: { type: 'string' },
    name: { type: 'string' },
    population: { type: ['null', 'integer'] },
    updated_at: { type: 'string', format: 'date-time', airbyte_type: 'timestamp_with_timezone' },
  },
};

if (command === 'spec') {
  emit({ type: 'SPEC', spec: { connectionSpecification: { type: 'object', required: ['path'], properties: { path: { type: 'string', description: 'NDJSON file of countries' } } } } });
  process.exit(0);
}
const config = JSON.parse(readFileSync(arg('config'), 'utf8'));
if (command === 'check') {
  const ok = existsSync(path.resolve(config.path));
  emit({ type: 'CONNECTION_STATUS', connectionStatus: ok ? { status: 'SUCCEEDED' } : { status: 'FAILED', message: `no file ${config.path}` } });
  process.exit(0);
}
if (command === 'discover') {
  emit({ type: 'CATALOG', catalog: { streams: [{ name: 'countries', json_schema, supported_sync_modes: ['full_refresh', 'incremental'], source_defined_cursor: true, source_defined_primary_key: [['code']] }] } });
  process.exit(0);
}
// read: resume after the line of this stream's state.
const states = arg('state') ? JSON.parse(readFileSync(arg('state'), 'utf8')) : [];
let line = states.find((s) => s.type === 'STREAM' && s.stream.stream_descriptor.name === 'countries')?.stream.stream_state.line ?? 0;
const rows = readFileSync(path.resolve(config.path), 'utf8').split('\n').filter((l) => l.trim() !== '');
emit({ type: 'LOG', log: { level: 'INFO', message: `source-countries: ${rows.length - line} new row(s) after line ${line}` } });
const state = () => emit({ type: 'STATE', state: { type: 'STREAM', stream: { stream_descriptor: { name: 'countries' }, stream_state: { line } } } });
for (const text of rows.slice(line)) {
  emit({ type: 'RECORD', record: { stream: 'countries', data: JSON.parse(text), emitted_at: Date.now() } });
  line++;
  if (line % 2 === 0) state();
}
state();
