/**
 * A job's target: the target recipe's defaults merged under the job's
 * `target` block, the warehouse (local path, file:// or s3://, with the S3
 * settings and the AWS SDK's own variables), the catalog, the table's
 * namespace and name, and the file settings.
 */
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { CatalogSpec, S3Settings, TargetPlan } from '../plan.js';
import { INGEST_DATE_PARTITION } from '../iceberg/partition.js';
import type { Asset } from '../types.js';
import type { JobContext } from './context.js';
import { connectorName, DEFAULT_TARGET, recipeMissing } from './job-recipes.js';
import { deepMerge } from './merge.js';
import { hasScheme, unsafeNamespace, unsafePathName } from './paths.js';
import type { ReadRecipe, Recipe } from './recipe.js';
import { CatalogSchema, type CatalogInput, type JobInput } from './schema.js';
import { isPlainObject } from './vars.js';
import { addZodProblems } from './zod-util.js';

/** The job's target plan, or undefined when a problem (recorded) prevents one. */
export function targetPlan(ctx: JobContext, job: JobInput, tgt: ReadRecipe | undefined, asset: Asset | undefined): TargetPlan | undefined {
  const tenant = String(job.tenant_id);
  const recipe: Recipe | undefined = tgt?.recipe;
  const base: Record<string, unknown> = {};
  if (recipe !== undefined) {
    if (recipe.catalog != null) base['catalog'] = recipe.catalog;
    if (recipe.file_format !== undefined) base['file_format'] = recipe.file_format;
    if (recipe.partitioning_default != null) base['partitioning'] = recipe.partitioning_default;
    if (recipe.default_engine != null) base['engine'] = recipe.default_engine;
    const conn = deepMerge<Record<string, unknown> | undefined>(recipe.connection_template ?? undefined, recipe.connection ?? undefined);
    if (conn !== undefined) base['connection'] = conn;
  }
  const jobTarget = job.target ?? {};
  const baseCatalog = base['catalog'] as { type?: string } | undefined;
  // A catalog of another type replaces the recipe's rather than inheriting its name/uri.
  if (baseCatalog !== undefined && jobTarget.catalog != null && jobTarget.catalog.type !== baseCatalog.type) delete base['catalog'];
  const merged = deepMerge<Record<string, unknown>>(base, jobTarget);
  if (tgt !== undefined) recipeMissing(ctx, tgt, job.target, false);
  const type = recipe?.type ?? connectorName(ctx, job.target_connector) ?? job.target?.type ?? DEFAULT_TARGET;
  const conn = isPlainObject(merged['connection']) ? merged['connection'] : {};
  ctx.collectSecrets(conn);

  // ---- warehouse and S3
  const key = (...p: (string | number)[]) => ['target', ...p];
  const s3Block = isPlainObject(conn['s3']) ? conn['s3'] : conn['bucket'] !== undefined ? conn : undefined;
  const s3Key = isPlainObject(conn['s3']) ? key('connection', 's3') : key('connection');
  let warehouse: string;
  let s3: S3Settings | undefined;
  let bucket: string | undefined;
  let prefix: string | undefined;
  const wh = merged['warehouse'];
  const explicitWarehouse = typeof wh === 'string' && wh !== '';
  if (!explicitWarehouse) {
    warehouse = pathToFileURL(path.resolve(ctx.cwd, 'warehouse')).href;
  } else if (/^s3a?:\/\//.test(wh)) {
    const [b, ...rest] = wh.replace(/^s3a?:\/\//, '').split('/');
    bucket = b;
    prefix = rest.join('/');
    warehouse = wh; // rewritten below from the parsed bucket and prefix
  } else if (wh.startsWith('file://')) {
    warehouse = wh;
  } else if (hasScheme(wh)) {
    ctx.problem(key('warehouse'), `unsupported warehouse "${wh}" (use a local path, file:// or s3://)`);
    warehouse = wh;
  } else {
    warehouse = pathToFileURL(path.resolve(ctx.jobDir, wh)).href;
  }
  // An explicit local warehouse wins over an S3 connection (e.g. one inherited from a recipe template).
  if (bucket !== undefined || (!explicitWarehouse && s3Block !== undefined)) {
    const b = s3Block ?? {};
    const str = (k: string) => (typeof b[k] === 'string' && b[k] !== '' ? (b[k] as string) : undefined);
    bucket ??= str('bucket');
    prefix ??= str('prefix');
    if (bucket === undefined || bucket === '') {
      ctx.problem([...s3Key, 'bucket'], 'required for an S3 warehouse');
    } else {
      prefix = (prefix ?? '').replace(/^\/+|\/+$/g, '');
      // The AWS SDK's own variables, so that a job behaves as the aws CLI would.
      const endpoint = str('endpoint') ?? (ctx.env['AWS_ENDPOINT_URL_S3'] || ctx.env['AWS_ENDPOINT_URL'] || undefined);
      const pathStyle = b['path_style_access'];
      s3 = {
        bucket,
        region: str('region') ?? (ctx.env['AWS_REGION'] || ctx.env['AWS_DEFAULT_REGION'] || 'us-east-1'),
        forcePathStyle: typeof pathStyle === 'boolean' ? pathStyle : endpoint !== undefined,
      };
      if (prefix !== '') s3.prefix = prefix;
      if (endpoint !== undefined) s3.endpoint = endpoint;
      const accessKeyId = str('access_key_id') ?? (ctx.env['AWS_ACCESS_KEY_ID'] || undefined);
      const secretAccessKey = str('secret_access_key') ?? (ctx.env['AWS_SECRET_ACCESS_KEY'] || undefined);
      const sessionToken = str('session_token') ?? (ctx.env['AWS_SESSION_TOKEN'] || undefined);
      if (accessKeyId !== undefined) s3.accessKeyId = accessKeyId;
      if (secretAccessKey !== undefined) s3.secretAccessKey = secretAccessKey;
      if (sessionToken !== undefined) s3.sessionToken = sessionToken;
      ctx.addSecret(secretAccessKey);
      ctx.addSecret(sessionToken);
      warehouse = `s3://${bucket}${prefix === '' ? '' : `/${prefix}`}`;
    }
  }

  // ---- catalog
  const catalog = catalogSpec(ctx, type, merged, conn, warehouse, s3 !== undefined);

  const num = (v: unknown, d: number) => (typeof v === 'number' ? v : d);
  const partitioning = Array.isArray(merged['partitioning']) ? (merged['partitioning'] as unknown[]).filter((p): p is string => typeof p === 'string') : [INGEST_DATE_PARTITION];
  const unsupported = partitioning.filter((p) => p !== INGEST_DATE_PARTITION);
  if (unsupported.length > 0) {
    ctx.problem(
      key('partitioning'),
      `partitioning by ${unsupported.map((p) => `"${p}"`).join(', ')} is not supported: use [${INGEST_DATE_PARTITION}] (day of _dativo_ingested_at, the default) or [] (unpartitioned)`,
    );
  }
  for (const [k, check] of [
    ['namespace', unsafeNamespace],
    ['table', unsafePathName],
  ] as const) {
    const v = merged[k];
    const why = typeof v === 'string' ? check(v) : undefined;
    if (why !== undefined) ctx.problem(['target', k], why);
  }
  if (catalog === undefined || asset === undefined) return undefined;
  const plan: TargetPlan = {
    type,
    warehouse,
    catalog,
    // Tenants are isolated by default: the tenant is the namespace's first
    // level (and the location's first folder). A job that names the
    // namespace itself names the table it shares.
    namespace: (merged['namespace'] as string | undefined) ?? `${tenant}.${asset.domain ?? 'default'}`,
    table: (merged['table'] as string | undefined) ?? asset.name.toLowerCase().replace(/[-\s]+/g, '_'),
    partitioning,
    targetFileSizeBytes: Math.round(num(merged['parquet_target_size_mb'], 128) * 1024 * 1024),
    rowGroupRows: num(merged['row_group_rows'], 100_000),
    compression: (merged['compression'] as TargetPlan['compression'] | undefined) ?? 'zstd',
  };
  if (typeof merged['batch_rows'] === 'number') plan.batchRows = merged['batch_rows'];
  if (typeof merged['workers'] === 'number') plan.workers = merged['workers'];
  if (s3 !== undefined) plan.s3 = s3;
  if (merged['namespace'] === undefined) plan.tenantScope = { tenant, legacyNamespace: asset.domain ?? 'default' };
  return plan;
}

function catalogSpec(ctx: JobContext, type: string, merged: Record<string, unknown>, conn: Record<string, unknown>, warehouse: string, isS3: boolean): CatalogSpec | undefined {
  const key = ['target', 'catalog'];
  let c: CatalogInput | undefined;
  const raw = merged['catalog'];
  if (raw !== undefined && raw !== null) {
    // Recipe and job parts were each validated; the deep-merged whole is re-checked.
    const parsed = CatalogSchema.safeParse(raw);
    if (!parsed.success) {
      addZodProblems(parsed.error, ctx.problems, ctx.file, raw, { basePath: key, schema: CatalogSchema });
      return undefined;
    }
    c = parsed.data;
  } else if (type === 'iceberg') {
    c = { type: 'sql' };
  }
  if (c === undefined || c.type === 'none') return { type: 'none' };
  ctx.addSecret(c.token);
  switch (c.type) {
    case 'sql':
    case 'sqlite': {
      let uri = c.uri;
      if (uri === undefined) {
        if (isS3) {
          ctx.problem(key, 'an S3 warehouse needs a shared catalog: set target.catalog.uri (postgres://… or sqlite:/abs/path/catalog.db)');
          return undefined;
        }
        uri = `sqlite:${path.join(fileURLToPath(warehouse), 'catalog.db')}`;
      } else if (uri.startsWith('sqlite:') && !uri.startsWith('sqlite://')) {
        uri = `sqlite:${path.resolve(ctx.jobDir, uri.slice('sqlite:'.length))}`;
      }
      return { type: 'sql', name: c.name ?? 'dativo', uri };
    }
    case 'rest': {
      const restConn = isPlainObject(conn['rest']) ? conn['rest'] : {};
      const uri = c.uri ?? (typeof restConn['uri'] === 'string' ? restConn['uri'] : undefined);
      if (uri === undefined) {
        ctx.problem([...key, 'uri'], 'required for a REST catalog');
        return undefined;
      }
      const spec: CatalogSpec = { type: 'rest', name: c.name ?? 'rest', uri };
      const prefix = c.prefix ?? c.branch;
      if (prefix !== undefined) spec.prefix = prefix;
      if (c.warehouse !== undefined) spec.warehouse = c.warehouse;
      if (c.token !== undefined) spec.token = c.token;
      if (c.headers !== undefined) spec.headers = c.headers;
      return spec;
    }
    case 'nessie': {
      const nessie = isPlainObject(conn['nessie']) ? conn['nessie'] : {};
      const base = c.uri ?? (typeof nessie['uri'] === 'string' && nessie['uri'] !== '' ? nessie['uri'] : undefined) ?? (ctx.env['NESSIE_URI'] || undefined);
      if (base === undefined) {
        ctx.problem(['target', 'connection', 'nessie', 'uri'], 'required for the nessie catalog (e.g. http://nessie:19120)');
        return undefined;
      }
      // Nessie serves the Iceberg REST API at /iceberg; its own API at /api/v1|v2.
      const root = base.replace(/\/+$/, '').replace(/\/api\/v[12]$/, '');
      const uri = root.endsWith('/iceberg') ? root : `${root}/iceberg`;
      const branch = c.prefix ?? c.branch ?? (typeof merged['branch'] === 'string' ? merged['branch'] : undefined) ?? 'main';
      const spec: CatalogSpec = { type: 'rest', name: c.name ?? 'nessie', uri, prefix: branch };
      if (c.warehouse !== undefined) spec.warehouse = c.warehouse;
      if (c.token !== undefined) spec.token = c.token;
      if (c.headers !== undefined) spec.headers = c.headers;
      return spec;
    }
  }
}
