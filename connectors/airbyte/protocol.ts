/**
 * The Airbyte protocol's messages (RECORD, STATE per stream / global /
 * legacy, LOG, TRACE, SPEC, CATALOG, CONNECTION_STATUS, CONTROL) and the
 * configured catalog a `read` gets: one stream selected.
 */
import { DativoError } from '../../lib/errors.js';
import { exactJsonPart, protocolError, type TapMessage, type TapProtocol } from '../tap/stream.js';

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Airbyte LOG levels → ours. */
function levelOf(level: unknown): 'debug' | 'info' | 'warn' | 'error' {
  switch (level) {
    case 'FATAL':
    case 'ERROR':
      return 'error';
    case 'WARN':
      return 'warn';
    case 'DEBUG':
    case 'TRACE':
      return 'debug';
    default:
      return 'info';
  }
}

/**
 * A TRACE error as ours: `config_error` → CONFIG_INVALID (exit 3, the
 * source's config is wrong: fix it, retrying will not help),
 * `transient_error` → SOURCE_UNAVAILABLE (exit 2), `system_error` and
 * anything else → SOURCE_ERROR (exit 2).
 */
export function traceError(error: Record<string, unknown>, file: string): DativoError {
  const failure = typeof error['failure_type'] === 'string' ? error['failure_type'] : 'system_error';
  const message = typeof error['message'] === 'string' ? error['message'] : 'an error';
  const internal = typeof error['internal_message'] === 'string' && error['internal_message'] !== message ? ` (${error['internal_message']})` : '';
  const text = `the Airbyte source reported a ${failure}: ${message}${internal}`;
  const context = { connector: 'airbyte', failureType: failure };
  if (failure === 'config_error') {
    return new DativoError('CONFIG_INVALID', text, { problems: [{ file, key: 'source.config', message: text }], context: { ...context, file, key: 'source.config' } });
  }
  if (failure === 'transient_error') return new DativoError('SOURCE_UNAVAILABLE', text, { context });
  return new DativoError('SOURCE_ERROR', text, { disposition: 'retryable', context });
}

/** The Airbyte protocol on stdout; `file` is the job file (for config errors). */
export function airbyteProtocol(file: string): TapProtocol {
  return Object.freeze({
    name: 'airbyte',
    decode(value: unknown, line: string): TapMessage {
      if (!isObject(value) || typeof value['type'] !== 'string') throw protocolError('airbyte', `not an Airbyte message (no "type"): ${line.slice(0, 200)}`);
      const type = value['type'];
      switch (type) {
        case 'RECORD': {
          const r = value['record'];
          if (!isObject(r) || typeof r['stream'] !== 'string') throw protocolError('airbyte', 'a RECORD message without record.stream');
          return { kind: 'record', stream: r['stream'], data: r['data'] };
        }
        case 'STATE': {
          const st = value['state'];
          if (!isObject(st)) throw protocolError('airbyte', 'a STATE message without "state"');
          if (st['type'] === 'STREAM') {
            const name = isObject(st['stream']) && isObject(st['stream']['stream_descriptor']) ? st['stream']['stream_descriptor']['name'] : undefined;
            if (typeof name !== 'string') throw protocolError('airbyte', 'a STREAM state without stream.stream_descriptor.name');
            return { kind: 'state', stream: name, text: exactJsonPart(line, (m) => [m['state']]) };
          }
          if (st['type'] === 'GLOBAL') {
            if (!isObject(st['global'])) throw protocolError('airbyte', 'a GLOBAL state without "global"');
            return { kind: 'state', text: exactJsonPart(line, (m) => [m['state']]) };
          }
          if (!('data' in st)) throw protocolError('airbyte', 'a LEGACY state without "data"');
          return { kind: 'state', text: exactJsonPart(line, (m) => (m['state'] as Record<string, unknown>)['data']) };
        }
        case 'LOG': {
          const l = isObject(value['log']) ? value['log'] : {};
          return { kind: 'log', level: levelOf(l['level']), message: String(l['message'] ?? '') };
        }
        case 'TRACE': {
          const t = isObject(value['trace']) ? value['trace'] : {};
          if (t['type'] === 'ERROR' && isObject(t['error'])) return { kind: 'error', error: traceError(t['error'], file) };
          return { kind: 'ignore', type: `TRACE ${String(t['type'])}` };
        }
        case 'SPEC':
        case 'CATALOG':
        case 'CONNECTION_STATUS':
        case 'CONTROL':
          return { kind: 'ignore', type };
        default:
          throw protocolError('airbyte', `unknown Airbyte message type ${JSON.stringify(type)}`);
      }
    },
  });
}

/** An AirbyteStream of a catalog. */
export interface AirbyteStream {
  name: string;
  namespace?: string;
  json_schema?: Record<string, unknown>;
  supported_sync_modes?: string[];
  source_defined_cursor?: boolean;
  default_cursor_field?: string[];
  source_defined_primary_key?: string[][];
  [k: string]: unknown;
}

/** The primary key of a stream: the first element of each `source_defined_primary_key` path. */
export function primaryKeyOf(s: AirbyteStream): string[] {
  return (s.source_defined_primary_key ?? []).map((p) => String(p[0] ?? '')).filter((k) => k !== '');
}

/**
 * The configured catalog of a read of one stream: `incremental` when the
 * job is incremental and the stream supports it (cursor: the source's own,
 * else its default cursor field), else `full_refresh`; always `append`.
 * @throws SOURCE_NOT_FOUND when the catalog has no such stream.
 */
export function configuredCatalog(streams: readonly AirbyteStream[], name: string, incremental: boolean, where: string): { catalog: Record<string, unknown>; stream: AirbyteStream } {
  const stream = streams.find((s) => s.name === name);
  if (!stream) {
    throw new DativoError('SOURCE_NOT_FOUND', `stream "${name}" is not in ${where} (streams: ${streams.map((s) => s.name).join(', ') || 'none'})`, {
      context: { connector: 'airbyte', object: name },
    });
  }
  const inc = incremental && (stream.supported_sync_modes ?? []).includes('incremental');
  const cursor = inc && stream.source_defined_cursor !== true && stream.default_cursor_field ? { cursor_field: stream.default_cursor_field } : {};
  const pk = stream.source_defined_primary_key ? { primary_key: stream.source_defined_primary_key } : {};
  return {
    stream,
    catalog: { streams: [{ stream, sync_mode: inc ? 'incremental' : 'full_refresh', destination_sync_mode: 'append', ...cursor, ...pk }] },
  };
}
