/**
 * Read an Iceberg table back with an independent reader (icebird 0.3.1).
 * icebird fetches everything with the global `fetch`, which cannot read
 * `file://`; so a tiny Range-capable node:http server serves the warehouse
 * directory on a free 127.0.0.1 port, and while a read runs the global
 * `fetch` is wrapped to send `file://<warehouse>/…` URLs (the ones inside
 * metadata and manifests) to it.
 */
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, normalize, sep } from 'node:path';
import { pathToFileURL } from 'node:url';
import { icebergRead } from 'icebird';
import { openCatalog } from '../../lib/iceberg/index.js';
import { openStorage } from '../../lib/storage/index.js';

export interface StaticServer {
  /** `http://127.0.0.1:<port>` */
  url: string;
  /** Requests served, for assertions. */
  requests: number;
  close(): Promise<void>;
}

/** Serve `rootDir` read-only with HEAD and single-range GET support. */
export async function serveDirectory(rootDir: string): Promise<StaticServer> {
  const state = { requests: 0 };
  const server: Server = createServer((req, res) => {
    state.requests += 1;
    void (async () => {
      const path = normalize(join(rootDir, decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname)));
      if (!path.startsWith(rootDir + sep) && path !== rootDir) {
        res.writeHead(403).end();
        return;
      }
      let size: number;
      try {
        const s = await stat(path);
        if (!s.isFile()) throw new Error('not a file');
        size = s.size;
      } catch {
        res.writeHead(404).end();
        return;
      }
      const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range ?? '');
      let start = 0;
      let end = size - 1;
      if (range) {
        if (range[1] === '') start = Math.max(0, size - Number(range[2]));
        else {
          start = Number(range[1]);
          if (range[2] !== '') end = Math.min(end, Number(range[2]));
        }
        if (start > end || start >= size) {
          res.writeHead(416, { 'content-range': `bytes */${size}` }).end();
          return;
        }
        res.writeHead(206, { 'content-length': end - start + 1, 'content-range': `bytes ${start}-${end}/${size}`, 'accept-ranges': 'bytes' });
      } else {
        res.writeHead(200, { 'content-length': size, 'accept-ranges': 'bytes' });
      }
      if (req.method === 'HEAD' || size === 0) {
        res.end();
        return;
      }
      createReadStream(path, { start, end }).pipe(res);
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    get requests() {
      return state.requests;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Options of {@link readIcebergTable}. */
export interface ReadTableOptions {
  /** Absolute directory of the warehouse (everything the table references must be inside). */
  warehouseDir: string;
  /** Table location URI (`file:///…`). */
  location: string;
  /** Metadata file to read (full URI or file name); icebird reads `metadata/<name>`. */
  metadataLocation: string;
}

/**
 * Every row of the table's current snapshot, as icebird returns them
 * (longs as bigint, timestamps as Date, dates as Date), in manifest order.
 */
export async function readIcebergTable(opts: ReadTableOptions): Promise<Record<string, unknown>[]> {
  const server = await serveDirectory(opts.warehouseDir);
  const prefix = pathToFileURL(opts.warehouseDir).href.replace(/\/$/, '');
  try {
    return await readIcebergVia({
      location: opts.location,
      metadataLocation: opts.metadataLocation,
      rewrite: (u) => (u.startsWith(prefix) ? server.url + u.slice(prefix.length) : u),
    });
  } finally {
    await server.close();
  }
}

/**
 * Read with icebird while the global `fetch` sends every URL through
 * `rewrite` (e.g. icebird's `https://<bucket>.s3.amazonaws.com/…` to a local
 * s3rver). `location` is passed through `rewrite` too.
 */
export async function readIcebergVia(opts: { location: string; metadataLocation: string; rewrite: (url: string) => string }): Promise<Record<string, unknown>[]> {
  const realFetch = globalThis.fetch;
  globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => {
    const url = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
    return realFetch(opts.rewrite(url), init);
  }) as typeof fetch;
  try {
    const name = opts.metadataLocation.slice(opts.metadataLocation.lastIndexOf('/') + 1);
    return await icebergRead({ tableUrl: opts.rewrite(opts.location), metadataFileName: name });
  } finally {
    globalThis.fetch = realFetch;
  }
}

/**
 * Every row of table `namespace.name` (a dotted namespace is multi-level) in a local warehouse's embedded
 * catalog (`<warehouseDir>/catalog.db`), read with icebird; `[]` when the
 * table does not exist yet or has no snapshot.
 */
export async function readWarehouseTable(warehouseDir: string, namespace: string, name: string): Promise<Record<string, unknown>[]> {
  const storage = await openStorage(pathToFileURL(warehouseDir).href);
  const catalog = await openCatalog({ type: 'sql', name: 'dativo', uri: `sqlite:${join(warehouseDir, 'catalog.db')}` }, storage);
  if (!catalog) throw new Error(`no catalog in ${warehouseDir}`);
  try {
    const t = await catalog.loadTable({ namespace: namespace.split('.'), name });
    if (!t || t.metadata['current-snapshot-id'] === undefined || String(t.metadata['current-snapshot-id']) === '-1') return [];
    return await readIcebergTable({ warehouseDir, location: t.metadata.location, metadataLocation: t.metadataLocation });
  } finally {
    await catalog.close();
  }
}
