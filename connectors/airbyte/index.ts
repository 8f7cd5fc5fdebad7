/**
 * Any Airbyte source as a source connector: a local executable, or
 * `docker run --rm -i <image>` (`source.image`), run with the protocol's
 * commands — `spec` (the job's config is checked against it before
 * anything else runs), `check`, `discover`, `read --config --catalog
 * --state`. Records of the object's stream come out, per-stream, global
 * or legacy STATE rides in the commit, TRACE errors map to exit codes and
 * LOG lines go into our log. See docs/connectors/airbyte.md.
 */
import { readFile } from 'node:fs/promises';
import { Ajv } from 'ajv';
import { z } from 'zod';
import { parseSourceOptions } from '../../lib/config/source-options.js';
import type { Connector, ConnectorDescriptor, DiscoveredObject, ReadContext, SourceStream } from '../../lib/connector.js';
import { DativoError } from '../../lib/errors.js';
import { parseJsonExact } from '../../lib/json.js';
import type { Logger } from '../../lib/log.js';
import type { JobPlan } from '../../lib/plan.js';
import { commandArgv, tapSettings, tapSourceKeys, type TapSettings } from '../tap/options.js';
import { TapFiles, type CommandOrigin } from '../tap/process.js';
import { discoveredColumns } from '../tap/schema.js';
import { protocolError, runTapToEnd, tapStream } from '../tap/stream.js';
import { airbyteProtocol, configuredCatalog, primaryKeyOf, type AirbyteStream } from './protocol.js';

export { airbyteProtocol, traceError } from './protocol.js';

export const descriptor: ConnectorDescriptor = Object.freeze({
  name: 'airbyte',
  roles: Object.freeze(['source'] as const),
  allowedInCloud: false,
  incrementalStrategies: Object.freeze(['source_state']),
  sortedByCursor: false,
  description: 'Any Airbyte source (an executable or a Docker image); its STATE rides in the commit, so it lands exactly once',
});

/** The Airbyte source's own keys of `source`: `command` or `image`. */
export const airbyteSourceOptions = z
  .looseObject({
    ...tapSourceKeys,
    /** A Docker image, run as `docker run --rm -i -v <private dir>:<private dir> <image>` (needs Docker). */
    image: z.string().min(1).optional(),
  })
  .superRefine((o, ctx) => {
    if ((o.command === undefined) === (o.image === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['command'], message: 'needs exactly one of source.command (an executable) or source.image (a Docker image)' });
    }
  });

type AirbyteOptions = z.infer<typeof airbyteSourceOptions>;

/** The argv of the source, given the private folder its files are in (a container needs it mounted). */
export function airbyteArgv(o: { command?: string | string[] | undefined; image?: string | undefined }, dir: string): string[] {
  if (o.image !== undefined) return ['docker', 'run', '--rm', '-i', '-v', `${dir}:${dir}`, o.image];
  return commandArgv(o.command ?? []);
}

interface AirbyteRun {
  plan: JobPlan;
  o: AirbyteOptions;
  s: TapSettings;
  files: TapFiles;
  configFile: string;
  log: Logger;
  signal: AbortSignal;
}

const originOf = (plan: JobPlan, o: AirbyteOptions): CommandOrigin => ({ file: plan.file, key: o.image !== undefined ? 'source.image' : 'source.command', connector: 'airbyte' });

async function open(plan: JobPlan, files: TapFiles, log: Logger, signal: AbortSignal): Promise<AirbyteRun> {
  const o = parseSourceOptions(plan, airbyteSourceOptions, 'airbyte');
  const s = tapSettings(plan, o, airbyteArgv(o, files.dir));
  const configFile = await files.write('config.json', JSON.stringify(s.config));
  return { plan, o, s, files, configFile, log, signal };
}

/** Run one protocol command to its end: its messages, LOG lines logged, a TRACE error thrown. */
async function command(r: AirbyteRun, args: string[]): Promise<Record<string, unknown>[]> {
  const what = `airbyte source ${JSON.stringify(r.s.argv.at(-1) ?? '')} ${args[0]}`;
  const out = await runTapToEnd({ argv: [...r.s.argv, ...args], settings: r.s, origin: originOf(r.plan, r.o), log: r.log, secrets: r.plan.secrets, signal: r.signal, what });
  const protocol = airbyteProtocol(r.plan.file);
  const messages: Record<string, unknown>[] = [];
  for (const line of out.split('\n')) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = parseJsonExact(line);
    } catch {
      throw protocolError('airbyte', `${what} printed a line that is not JSON: ${line.slice(0, 200)}`);
    }
    const msg = protocol.decode(value, line);
    if (msg.kind === 'log') r.log[msg.level]({ event_type: 'tap_log', protocol: 'airbyte' }, msg.message);
    else if (msg.kind === 'error') throw msg.error;
    messages.push(value as Record<string, unknown>);
  }
  return messages;
}

/** The one message of `type` a command printed, or TAP_PROTOCOL. */
function the(messages: Record<string, unknown>[], type: string, what: string): Record<string, unknown> {
  const m = messages.find((x) => x['type'] === type);
  if (!m) throw protocolError('airbyte', `${what} printed no ${type} message`);
  return m;
}

/**
 * `spec`, then the job's `source.config` against its connectionSpecification.
 * @throws CONFIG_INVALID listing every missing or wrong key (`source.config.<key>`), before the source reads anything.
 */
async function checkConfigAgainstSpec(r: AirbyteRun): Promise<void> {
  const spec = the(await command(r, ['spec']), 'SPEC', 'spec')['spec'] as Record<string, unknown> | undefined;
  const schema = spec?.['connectionSpecification'];
  if (schema === null || typeof schema !== 'object') throw protocolError('airbyte', 'the SPEC message has no connectionSpecification');
  let validateConfig;
  try {
    validateConfig = new Ajv({ allErrors: true, strict: false, validateFormats: false }).compile(schema);
  } catch (err) {
    throw protocolError('airbyte', `the source's connectionSpecification is not a valid JSON Schema: ${(err as Error).message}`);
  }
  if (validateConfig(r.s.config)) return;
  const problems = (validateConfig.errors ?? []).map((e) => {
    const at = e.instancePath.split('/').filter((p) => p !== '');
    const missing = e.keyword === 'required' ? String((e.params as { missingProperty?: string }).missingProperty ?? '') : undefined;
    const key = ['source', 'config', ...at, ...(missing ? [missing] : [])].join('.');
    return { file: r.plan.file, key, message: missing ? `required by the source's spec` : (e.message ?? 'invalid') };
  });
  throw new DativoError('CONFIG_INVALID', `source.config does not match the Airbyte source's spec: ${problems.map((p) => `${p.key}: ${p.message}`).join('; ')}`, {
    problems,
    context: { connector: 'airbyte', file: r.plan.file, key: 'source.config' },
  });
}

/** The source's streams: from `source.catalog` when given, else its `discover`. */
async function streamsOf(r: AirbyteRun): Promise<{ streams: AirbyteStream[]; where: string }> {
  let catalog: unknown;
  let where: string;
  if (r.s.catalogFile !== undefined) {
    where = r.s.catalogFile;
    try {
      catalog = JSON.parse(await readFile(r.s.catalogFile, 'utf8'));
    } catch (err) {
      throw new DativoError('CONFIG_INVALID', `source.catalog: cannot read ${r.s.catalogFile} as JSON: ${(err as Error).message}`, {
        cause: err,
        problems: [{ file: r.plan.file, key: 'source.catalog', message: `cannot read ${r.s.catalogFile} as JSON` }],
        context: { connector: 'airbyte', file: r.plan.file, key: 'source.catalog' },
      });
    }
    const c = catalog as Record<string, unknown>;
    if (c && typeof c === 'object' && 'catalog' in c) catalog = c['catalog'];
  } else {
    where = 'the catalog of the source\'s discover';
    catalog = the(await command(r, ['discover', '--config', r.configFile]), 'CATALOG', 'discover')['catalog'];
  }
  const streams = (catalog as { streams?: unknown } | undefined)?.streams;
  if (!Array.isArray(streams)) throw protocolError('airbyte', `${where} has no "streams" array`);
  return { streams: streams as AirbyteStream[], where };
}

async function withRun<T>(plan: JobPlan, log: Logger, signal: AbortSignal, fn: (r: AirbyteRun) => Promise<T>): Promise<T> {
  const files = await TapFiles.create();
  try {
    return await fn(await open(plan, files, log, signal));
  } finally {
    await files.remove();
  }
}

/** `spec` (config checked), `check` (CONNECTION_STATUS must be SUCCEEDED), and every stream of the job in the catalog. */
export async function check(plan: JobPlan, opts: { signal: AbortSignal; log: Logger }): Promise<void> {
  await withRun(plan, opts.log, opts.signal, async (r) => {
    await checkConfigAgainstSpec(r);
    const status = the(await command(r, ['check', '--config', r.configFile]), 'CONNECTION_STATUS', 'check')['connectionStatus'] as { status?: string; message?: string } | undefined;
    if (status?.status !== 'SUCCEEDED') {
      const text = `the Airbyte source's check failed: ${status?.message ?? status?.status ?? 'no status'}`;
      throw new DativoError('CONFIG_INVALID', text, { problems: [{ file: plan.file, key: 'source.config', message: text }], context: { connector: 'airbyte', file: plan.file, key: 'source.config' } });
    }
    const { streams, where } = await streamsOf(r);
    for (const o of plan.source.objects) configuredCatalog(streams, o.name, false, where);
  });
}

/** `dativo discover`: the job's streams (or every stream of the source) with columns from their JSON schema and their primary keys. */
export async function discover(plan: JobPlan, opts: { signal: AbortSignal; log: Logger }): Promise<DiscoveredObject[]> {
  return withRun(plan, opts.log, opts.signal, async (r) => {
    const { streams: all, where } = await streamsOf(r);
    // The job's streams when it names any (each must be in the catalog), else every stream.
    const streams = plan.source.objects.length > 0 ? plan.source.objects.map((o) => configuredCatalog(all, o.name, false, where).stream) : all;
    return streams.map((s) => ({ name: s.name, columns: discoveredColumns(s.json_schema, primaryKeyOf(s), 'Airbyte'), primaryKey: primaryKeyOf(s) }));
  });
}

/** Read one stream: config checked against `spec`, a configured catalog of only it, and the state committed with it. */
export function read(ctx: ReadContext): SourceStream {
  const o = parseSourceOptions(ctx.plan, airbyteSourceOptions, 'airbyte');
  let schema: unknown;
  return tapStream({
    ctx,
    protocol: airbyteProtocol(ctx.plan.file),
    // argv[0] here names the source in messages; the run's argv comes from prepare().
    settings: tapSettings(ctx.plan, o, o.image !== undefined ? [o.image] : commandArgv(o.command ?? [])),
    origin: originOf(ctx.plan, o),
    knownSchema: () => schema,
    async prepare(files, signal) {
      const r = await open(ctx.plan, files, ctx.log, signal);
      await checkConfigAgainstSpec(r);
      const { streams, where } = await streamsOf(r);
      const configured = configuredCatalog(streams, ctx.object.name, !ctx.fullRefresh, where);
      schema = configured.stream.json_schema;
      const cat = await files.write('catalog.json', JSON.stringify(configured.catalog));
      const state = ctx.fullRefresh ? undefined : ctx.state?.tap?.state;
      const st = state !== undefined ? await files.write('state.json', state) : undefined;
      return [...r.s.argv, 'read', '--config', r.configFile, '--catalog', cat, ...(st !== undefined ? ['--state', st] : [])];
    },
  });
}

const connector: Connector = { descriptor, options: airbyteSourceOptions, check, read, discover };
export default connector;
