#!/usr/bin/env node
/**
 * A Singer tap for the tests, written from the Singer specification
 * (github.com/singer-io/getting-started, SPEC.md): `--discover` prints a
 * catalog; a sync takes `--config`, `--catalog` (or `--properties`) and
 * `--state`, emits SCHEMA, RECORD and STATE messages one per line on stdout,
 * logs on stderr, and resumes from the bookmarks of its state
 * (`{"bookmarks": {"<stream>": {"id": <last id>}}}`). What it emits and
 * how it fails is set in its config: see tap-data.mjs.
 */
import { emit, parseArgs, readJson, register, schema } from './tap-data.mjs';

const args = parseArgs(process.argv.slice(2));
if (!args.config) {
  process.stderr.write('CRITICAL --config is required\n');
  process.exit(2);
}
const config = readJson(args.config);
register(config, args.config);
const names = Object.keys(config.streams ?? {});

if (args.discover) {
  const streams = names.map((n) => ({
    tap_stream_id: n,
    stream: n,
    schema: config.schema_override?.[n] ?? schema,
    key_properties: ['id'],
    metadata: [{ breadcrumb: [], metadata: { 'table-key-properties': ['id'], 'forced-replication-method': 'INCREMENTAL' } }],
  }));
  process.stdout.write(`${JSON.stringify({ streams }, null, 2)}\n`);
  process.exit(0);
}

const catalogPath = args.catalog ?? args.properties;
let selected = names;
if (catalogPath && config.mode !== 'ignore_selection') {
  const catalog = readJson(catalogPath);
  selected = catalog.streams
    .filter((s) => s.metadata?.find((m) => m.breadcrumb.length === 0)?.metadata.selected === true || s.schema?.selected === true)
    .map((s) => s.tap_stream_id);
}
const state = args.state ? readJson(args.state) : {};
const bookmarks = { ...(state.bookmarks ?? {}) };
process.stderr.write(`INFO syncing ${selected.join(', ')} from ${JSON.stringify(bookmarks)}\n`);

await emit(config, selected, bookmarks, {
  schema: (s) => JSON.stringify({ type: 'SCHEMA', stream: s, schema: config.schema_override?.[s] ?? schema, key_properties: ['id'] }),
  record: (s, json) => `{"type":"RECORD","stream":${JSON.stringify(s)},"record":${json},"time_extracted":"2026-01-02T00:00:00Z"}`,
  state: (b) => JSON.stringify({ type: 'STATE', value: { bookmarks: b, position: 18446744073709551615n.toString() } }).replace(/"position":"(\d+)"/, '"position":$1'),
  rawState: (json) => `{"type":"STATE","value":${json}}`,
});
process.stderr.write('INFO done\n');
