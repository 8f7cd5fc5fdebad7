/**
 * Any Singer tap as a source: `source.command` runs as a child process with
 * `--config`, `--catalog` (or `--properties`) and `--state` files written
 * for it in a private temp folder; its RECORDs become the records of the
 * job's objects (one object per stream), its SCHEMA is checked against the
 * asset, and its last STATE is committed with the data and handed back as
 * `--state` on the next run. See docs/connectors/singer.md.
 */
import { readFile } from 'node:fs/promises';
import { z } from 'zod';
import { parseSourceOptions } from '../../lib/config/source-options.js';
import type { Connector, ConnectorDescriptor, DiscoveredObject, ReadContext, SourceStream } from '../../lib/connector.js';
import { DativoError } from '../../lib/errors.js';
import type { Logger } from '../../lib/log.js';
import type { JobPlan } from '../../lib/plan.js';
import { commandArgv, tapSettings, tapSourceKeys, type TapSettings } from '../tap/options.js';
import { TapFiles, type CommandOrigin } from '../tap/process.js';
import { discoveredColumns } from '../tap/schema.js';
import { runTapToEnd, tapStream } from '../tap/stream.js';
import { keyPropertiesOf, parseCatalog, selectStream, singerProtocol, streamName, type SingerCatalog } from './protocol.js';

export { singerProtocol } from './protocol.js';

export const descriptor: ConnectorDescriptor = Object.freeze({
  name: 'singer',
  roles: Object.freeze(['source'] as const),
  // A tap is a program on this machine: it may reach anything.
  allowedInCloud: false,
  incrementalStrategies: Object.freeze(['source_state']),
  sortedByCursor: false,
  description: 'Any Singer tap run as a child process; its STATE rides in the commit, so it lands exactly once',
});

/** The Singer source's own keys of `source`. */
export const singerSourceOptions = z.looseObject({
  ...tapSourceKeys,
  command: tapSourceKeys.command.unwrap(),
  /** `catalog` (`--catalog`, current taps) or `properties` (`--properties`, older taps). Default `catalog`. */
  catalog_flag: z.enum(['catalog', 'properties']).optional(),
});

interface SingerSettings extends TapSettings {
  catalogFlag: 'catalog' | 'properties';
}

function singerSettings(plan: JobPlan): SingerSettings {
  const o = parseSourceOptions(plan, singerSourceOptions, 'singer');
  return { ...tapSettings(plan, o, commandArgv(o.command)), catalogFlag: o.catalog_flag ?? 'catalog' };
}

const originOf = (plan: JobPlan): CommandOrigin => ({ file: plan.file, key: 'source.command', connector: 'singer' });

/** The tap's catalog: `source.catalog` when given, else its `--discover` output. */
async function tapCatalog(plan: JobPlan, s: SingerSettings, configFile: string, log: Logger, signal: AbortSignal): Promise<{ catalog: SingerCatalog; where: string }> {
  if (s.catalogFile !== undefined) {
    let text: string;
    try {
      text = await readFile(s.catalogFile, 'utf8');
    } catch (err) {
      throw new DativoError('CONFIG_INVALID', `source.catalog: cannot read ${s.catalogFile}: ${(err as Error).message}`, {
        cause: err,
        problems: [{ file: plan.file, key: 'source.catalog', message: `cannot read ${s.catalogFile}` }],
        context: { connector: 'singer', file: plan.file, key: 'source.catalog' },
      });
    }
    return { catalog: parseCatalog(text, s.catalogFile), where: s.catalogFile };
  }
  const what = `singer tap ${JSON.stringify(s.argv[0])} --discover`;
  const out = await runTapToEnd({ argv: [...s.argv, '--config', configFile, '--discover'], settings: s, origin: originOf(plan), log, secrets: plan.secrets, signal, what });
  return { catalog: parseCatalog(out, `the output of ${what}`), where: `the catalog of ${what}` };
}

/** Run `fn` with the tap's config written to a private folder, removed afterwards. */
async function withConfig<T>(s: TapSettings, fn: (configFile: string) => Promise<T>): Promise<T> {
  const files = await TapFiles.create();
  try {
    return await fn(await files.write('config.json', JSON.stringify(s.config)));
  } finally {
    await files.remove();
  }
}

/** `dativo discover`: the job's streams (or every stream of the catalog), with columns from its schema and its key properties. */
export async function discover(plan: JobPlan, opts: { signal: AbortSignal; log: Logger }): Promise<DiscoveredObject[]> {
  const s = singerSettings(plan);
  const { catalog, where } = await withConfig(s, (cfg) => tapCatalog(plan, s, cfg, opts.log, opts.signal));
  // The job's streams when it names any (each must be in the catalog), else every stream.
  const streams = plan.source.objects.length > 0 ? plan.source.objects.map((o) => selectStream(catalog, o.name, where).stream) : catalog.streams;
  return streams.map((st) => ({ name: streamName(st), columns: discoveredColumns(st.schema, keyPropertiesOf(st), 'Singer'), primaryKey: keyPropertiesOf(st) }));
}

/** The tap starts, discovers, and its catalog has every stream the job names (SOURCE_NOT_FOUND otherwise). */
export async function check(plan: JobPlan, opts: { signal: AbortSignal; log: Logger }): Promise<void> {
  const s = singerSettings(plan);
  const { catalog, where } = await withConfig(s, (cfg) => tapCatalog(plan, s, cfg, opts.log, opts.signal));
  for (const o of plan.source.objects) selectStream(catalog, o.name, where);
}

/** Read one stream: the tap runs with a catalog selecting only it, and the state committed with it. */
export function read(ctx: ReadContext): SourceStream {
  const s = singerSettings(ctx.plan);
  return tapStream({
    ctx,
    protocol: singerProtocol,
    settings: s,
    origin: originOf(ctx.plan),
    async prepare(files, signal) {
      const cfg = await files.write('config.json', JSON.stringify(s.config));
      const { catalog, where } = await tapCatalog(ctx.plan, s, cfg, ctx.log, signal);
      const selected = selectStream(catalog, ctx.object.name, where);
      const cat = await files.write('catalog.json', JSON.stringify(selected.catalog));
      const state = ctx.fullRefresh ? undefined : ctx.state?.tap?.state;
      const st = state !== undefined ? await files.write('state.json', state) : undefined;
      return [...s.argv, '--config', cfg, `--${s.catalogFlag}`, cat, ...(st !== undefined ? ['--state', st] : [])];
    },
  });
}

const connector: Connector = { descriptor, options: singerSourceOptions, check, read, discover };
export default connector;
