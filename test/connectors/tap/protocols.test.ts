/** Singer and Airbyte messages decoded (connectors/singer/protocol.ts, connectors/airbyte/protocol.ts). */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { airbyteProtocol, configuredCatalog, traceError } from '../../../connectors/airbyte/protocol.js';
import { selectStream, singerProtocol } from '../../../connectors/singer/protocol.js';
import { DativoError } from '../../../lib/errors.js';
import { parseJsonExact } from '../../../lib/json.js';

const decode = (p: typeof singerProtocol, line: string): ReturnType<typeof singerProtocol.decode> => p.decode(parseJsonExact(line), line);

test('Singer: RECORD, SCHEMA, STATE (its value as exact JSON text), ACTIVATE_VERSION ignored, BATCH and unknown types refused', () => {
  assert.deepEqual(decode(singerProtocol, '{"type":"RECORD","stream":"s","record":{"id":12345678901234567890}}'), { kind: 'record', stream: 's', data: { id: 12345678901234567890n } });
  assert.equal(decode(singerProtocol, '{"type":"SCHEMA","stream":"s","schema":{"type":"object"},"key_properties":[]}').kind, 'schema');
  assert.deepEqual(decode(singerProtocol, '{"type": "STATE", "value": {"lsn": 18446744073709551615, "f": 0.1000000000000000055}}'), { kind: 'state', text: '{"lsn":18446744073709551615,"f":0.1000000000000000055}' });
  assert.equal(decode(singerProtocol, '{"type":"ACTIVATE_VERSION","stream":"s","version":1}').kind, 'ignore');
  assert.throws(() => decode(singerProtocol, '{"type":"BATCH","stream":"s"}'), (e: unknown) => e instanceof DativoError && e.code === 'TAP_PROTOCOL' && /batch mode off/.test(e.message));
  assert.throws(() => decode(singerProtocol, '{"type":"NOPE"}'), /unknown Singer message type "NOPE"/);
  assert.throws(() => decode(singerProtocol, '[1,2]'), /not a Singer message/);
});

test('Singer catalog: exactly the object\'s stream is selected, in metadata and the legacy schema flag', () => {
  const catalog = { streams: [{ tap_stream_id: 'a', schema: { type: 'object' }, metadata: [{ breadcrumb: [], metadata: { selected: true } }] }, { tap_stream_id: 'b', schema: {} }] };
  const { catalog: out } = selectStream(catalog, 'b', 'c');
  assert.deepEqual(out.streams.map((s) => [s.metadata?.[0]?.metadata['selected'], (s.schema as { selected?: boolean }).selected]), [[false, false], [true, true]]);
  assert.equal(catalog.streams[0]?.metadata?.[0]?.metadata['selected'], true, 'the input is not modified');
  assert.throws(() => selectStream(catalog, 'x', 'the catalog'), (e: unknown) => e instanceof DativoError && e.code === 'SOURCE_NOT_FOUND' && /streams: a, b/.test(e.message));
});

test('Airbyte: RECORD, STREAM/GLOBAL/LEGACY state as the --state file wants it, LOG levels, TRACE errors', () => {
  const p = airbyteProtocol('job.yaml');
  assert.deepEqual(decode(p, '{"type":"RECORD","record":{"stream":"s","data":{"a":1},"emitted_at":1}}'), { kind: 'record', stream: 's', data: { a: 1 } });
  assert.deepEqual(decode(p, '{"type":"STATE","state":{"type":"STREAM","stream":{"stream_descriptor":{"name":"s"},"stream_state":{"c":9007199254740993}}}}'), {
    kind: 'state',
    stream: 's',
    text: '[{"type":"STREAM","stream":{"stream_descriptor":{"name":"s"},"stream_state":{"c":9007199254740993}}}]',
  });
  assert.deepEqual(decode(p, '{"type":"STATE","state":{"type":"GLOBAL","global":{"shared_state":{},"stream_states":[]}}}'), { kind: 'state', text: '[{"type":"GLOBAL","global":{"shared_state":{},"stream_states":[]}}]' });
  assert.deepEqual(decode(p, '{"type":"STATE","state":{"data":{"x":1}}}'), { kind: 'state', text: '{"x":1}' });
  assert.deepEqual(decode(p, '{"type":"LOG","log":{"level":"FATAL","message":"m"}}'), { kind: 'log', level: 'error', message: 'm' });
  assert.deepEqual(decode(p, '{"type":"LOG","log":{"level":"TRACE","message":"m"}}'), { kind: 'log', level: 'debug', message: 'm' });
  assert.equal(decode(p, '{"type":"TRACE","trace":{"type":"ESTIMATE"}}').kind, 'ignore');
  const e = decode(p, '{"type":"TRACE","trace":{"type":"ERROR","error":{"message":"bad key","failure_type":"config_error"}}}');
  assert.ok(e.kind === 'error' && e.error.code === 'CONFIG_INVALID' && e.error.exitCode === 3 && e.error.problems[0]?.key === 'source.config');
  assert.throws(() => decode(p, '{"type":"STATE","state":{"type":"STREAM","stream":{}}}'), /stream_descriptor.name/);
});

test('TRACE failure types: config_error → 3, transient_error → 2, system_error (or none) → 2', () => {
  assert.deepEqual(
    ['config_error', 'transient_error', 'system_error', undefined].map((t) => {
      const e = traceError({ message: 'x', ...(t ? { failure_type: t } : {}) }, 'j.yaml');
      return [e.code, e.exitCode];
    }),
    [['CONFIG_INVALID', 3], ['SOURCE_UNAVAILABLE', 2], ['SOURCE_ERROR', 2], ['SOURCE_ERROR', 2]],
  );
});

test('configured catalog: incremental only when the job is and the stream supports it; the default cursor when the source defines none', () => {
  const streams = [{ name: 's', supported_sync_modes: ['full_refresh', 'incremental'], default_cursor_field: ['updated'], source_defined_primary_key: [['id']] }, { name: 'f', supported_sync_modes: ['full_refresh'] }];
  assert.deepEqual(configuredCatalog(streams, 's', true, 'c').catalog, {
    streams: [{ stream: streams[0], sync_mode: 'incremental', destination_sync_mode: 'append', cursor_field: ['updated'], primary_key: [['id']] }],
  });
  assert.equal((configuredCatalog(streams, 'f', true, 'c').catalog['streams'] as { sync_mode: string }[])[0]?.sync_mode, 'full_refresh');
  assert.equal((configuredCatalog(streams, 's', false, 'c').catalog['streams'] as { sync_mode: string }[])[0]?.sync_mode, 'full_refresh');
});
