#!/usr/bin/env node
/**
 * A small Singer tap (the Singer spec: SCHEMA, RECORD, STATE on stdout):
 * one stream, `countries`, read from the NDJSON file its config names
 * (`{"path": "..."}`), resumed after the line its state's bookmark names.
 *   --config c.json --discover            prints the catalog
 *   --config c.json --catalog k.json [--state s.json]   syncs
 * singer_countries.yaml runs it; docs/connectors/singer.md explains it.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';

const arg = (name) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const config = JSON.parse(readFileSync(arg('config'), 'utf8'));
const schema = {
  type: 'object',
  properties: {
    code: { type: 'string' },
    name: { type: 'string' },
    population: { type: ['null', 'integer'] },
    updated_at: { type: 'string', format: 'date-time' },
  },
};
const emit = (m) => process.stdout.write(`${JSON.stringify(m)}\n`);

if (process.argv.includes('--discover')) {
  emit({ streams: [{ tap_stream_id: 'countries', stream: 'countries', schema, key_properties: ['code'], metadata: [{ breadcrumb: [], metadata: { 'table-key-properties': ['code'] } }] }] });
  process.exit(0);
}

const state = arg('state') ? JSON.parse(readFileSync(arg('state'), 'utf8')) : {};
let line = state.bookmarks?.countries?.line ?? 0;
const rows = readFileSync(path.resolve(config.path), 'utf8').split('\n').filter((l) => l.trim() !== '');
console.error(`INFO tap-countries: ${rows.length - line} new row(s) after line ${line}`);
emit({ type: 'SCHEMA', stream: 'countries', schema, key_properties: ['code'] });
for (const text of rows.slice(line)) {
  emit({ type: 'RECORD', stream: 'countries', record: JSON.parse(text) });
  line++;
  // A state after every two records: what a real tap does between pages.
  if (line % 2 === 0) emit({ type: 'STATE', value: { bookmarks: { countries: { line } } } });
}
emit({ type: 'STATE', value: { bookmarks: { countries: { line } } } });
