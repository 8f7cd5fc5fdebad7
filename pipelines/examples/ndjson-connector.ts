/**
 * A connector of your own: NDJSON files, one object per `source.streams`
 * entry. It declares the schema of its options and the objects they name,
 * so `dativo validate` checks a job that uses it like any built-in one.
 *
 *   source_connector: ./ndjson-connector.ts   (see ndjson_job.yaml)
 *
 * docs/library.md quotes it; test/pipelines/examples.test.ts runs a job with it.
 * In your own project import from 'dativo-ingest' instead of '../../lib/index.js'.
 */
import { createReadStream } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { z } from 'zod';
import type { Connector, ReadContext } from '../../lib/index.js';

/** The connector's own keys of `source`: every other key is reported with the valid ones. */
const options = z.looseObject({
  streams: z.array(z.strictObject({ object: z.string().min(1), path: z.string().min(1) })).min(1),
});

async function* records(ctx: ReadContext): AsyncGenerator<Record<string, unknown>> {
  const file = createReadStream(String(ctx.object.config['path']), { signal: ctx.signal });
  let line = 0;
  for await (const text of createInterface({ input: file, crlfDelay: Infinity })) {
    line++;
    if (text.trim() === '') continue;
    try {
      yield JSON.parse(text) as Record<string, unknown>;
    } catch {
      ctx.rejects.reject({ reason: 'not a JSON line', code: 'json', record: text, location: { file: ctx.object.config['path'], line } });
    }
  }
}

const connector: Connector = {
  descriptor: Object.freeze({
    name: 'ndjson_example',
    roles: Object.freeze(['source'] as const),
    allowedInCloud: false,
    incrementalStrategies: Object.freeze(['updated']),
    sortedByCursor: false,
    description: 'NDJSON files, one object per stream (library example)',
  }),
  options,
  // Called once the options passed their schema: one object per stream, its path made absolute.
  objects: (source, _asset, ctx) =>
    options.parse(source).streams.map((s, i) => ({ name: s.object, config: { path: path.resolve(ctx.jobDir, s.path) }, key: ['source', 'streams', i] })),
  read: (ctx) => Readable.from(records(ctx), { objectMode: true, highWaterMark: 16 }),
};

export default connector;
