/**
 * The Singer specification's messages on a tap's stdout (SCHEMA, RECORD,
 * STATE; ACTIVATE_VERSION ignored) and its catalog (`--discover` output,
 * `--catalog` input with one stream selected).
 */
import { DativoError } from '../../lib/errors.js';
import { exactJsonPart, protocolError, type TapMessage, type TapProtocol } from '../tap/stream.js';

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

export const singerProtocol: TapProtocol = Object.freeze({
  name: 'singer',
  decode(value: unknown, line: string): TapMessage {
    if (!isObject(value) || typeof value['type'] !== 'string') throw protocolError('singer', `not a Singer message (no "type"): ${line.slice(0, 200)}`);
    const type = value['type'];
    switch (type) {
      case 'RECORD': {
        if (typeof value['stream'] !== 'string') throw protocolError('singer', 'a RECORD message without "stream"');
        return { kind: 'record', stream: value['stream'], data: value['record'] };
      }
      case 'SCHEMA': {
        if (typeof value['stream'] !== 'string') throw protocolError('singer', 'a SCHEMA message without "stream"');
        return { kind: 'schema', stream: value['stream'], schema: value['schema'] };
      }
      case 'STATE':
        if (!('value' in value)) throw protocolError('singer', 'a STATE message without "value"');
        return { kind: 'state', text: exactJsonPart(line, (m) => m['value']) };
      case 'ACTIVATE_VERSION':
        return { kind: 'ignore', type };
      case 'BATCH':
        // Records in files the tap names: skipping them would lose them.
        throw protocolError('singer', 'the tap sent a BATCH message (records in files); turn its batch mode off (e.g. the Meltano SDK "batch_config" setting)');
      default:
        throw protocolError('singer', `unknown Singer message type ${JSON.stringify(type)}`);
    }
  },
});

/** One stream entry of a Singer catalog. */
export interface SingerCatalogStream {
  tap_stream_id?: string;
  stream?: string;
  schema?: Record<string, unknown>;
  key_properties?: string[];
  metadata?: { breadcrumb: unknown[]; metadata: Record<string, unknown> }[];
  [k: string]: unknown;
}

export interface SingerCatalog {
  streams: SingerCatalogStream[];
  [k: string]: unknown;
}

/** A stream's name: its `tap_stream_id`, else its `stream`. */
export const streamName = (s: SingerCatalogStream): string => String(s.tap_stream_id ?? s.stream ?? '');

/**
 * Parse a catalog (a tap's `--discover` output or a catalog file).
 * @throws TAP_PROTOCOL when it is not JSON or has no `streams` array.
 */
export function parseCatalog(text: string, where: string): SingerCatalog {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (err) {
    throw protocolError('singer', `${where} is not a JSON catalog: ${(err as Error).message}`);
  }
  if (!isObject(v) || !Array.isArray(v['streams'])) throw protocolError('singer', `${where} is not a Singer catalog (no "streams" array)`);
  return v as SingerCatalog;
}

/** The key columns of a catalog stream: `key_properties`, else the stream metadata's `table-key-properties`. */
export function keyPropertiesOf(s: SingerCatalogStream): string[] {
  if (Array.isArray(s.key_properties)) return s.key_properties.map(String);
  const top = s.metadata?.find((m) => Array.isArray(m.breadcrumb) && m.breadcrumb.length === 0);
  const k = top?.metadata['table-key-properties'];
  return Array.isArray(k) ? k.map(String) : [];
}

/**
 * The catalog with exactly `name` selected (stream metadata `selected`, and
 * the legacy `schema.selected`); every other stream deselected.
 * @throws SOURCE_NOT_FOUND when the catalog has no such stream.
 */
export function selectStream(catalog: SingerCatalog, name: string, where: string): { catalog: SingerCatalog; stream: SingerCatalogStream } {
  const found = catalog.streams.find((s) => streamName(s) === name);
  if (!found) {
    throw new DativoError('SOURCE_NOT_FOUND', `stream "${name}" is not in ${where} (streams: ${catalog.streams.map(streamName).join(', ') || 'none'})`, {
      context: { connector: 'singer', object: name },
    });
  }
  const streams = catalog.streams.map((s) => {
    const selected = s === found;
    const metadata = Array.isArray(s.metadata) ? s.metadata.map((m) => ({ ...m, metadata: { ...m.metadata } })) : [];
    const top = metadata.find((m) => Array.isArray(m.breadcrumb) && m.breadcrumb.length === 0);
    if (top) top.metadata['selected'] = selected;
    else metadata.push({ breadcrumb: [], metadata: { selected } });
    return { ...s, metadata, ...(isObject(s.schema) ? { schema: { ...s.schema, selected } } : {}) };
  });
  return { catalog: { ...catalog, streams }, stream: found };
}
