/**
 * What the SaaS API fakes of test/fakes/ share besides the server itself
 * (test/helpers/http-server.ts): a base class that serves a fake on a free
 * loopback port, the queue of injected faults (429 with `Retry-After`, 5xx,
 * 401 …) and a per-window request counter for rate limits that answer 429
 * by themselves. Each fake keeps the API's own behaviour: routes, error
 * bodies, which limit applies to which request.
 */
import type http from 'node:http';
import { fakeApi, type FakeApi, type SeenRequest } from './http-server.js';

/** A queued fault: the next matching requests get this answer. */
export interface Fault {
  /** Path prefix to match, e.g. `/v1/customers`. Default: every path. */
  path?: string;
  /** Only requests with these query parameter values, e.g. `{alt: 'media'}`. Default: any. */
  query?: Record<string, string>;
  /** Only requests this accepts (e.g. list pages of one created window). Default: all. */
  match?: (req: SeenRequest) => boolean;
  status: number;
  /** How many requests get it. Default 1; `Infinity` for ever. */
  times?: number;
  /** Headers of the answer, e.g. `{'retry-after': '1'}`. Default none. */
  headers?: Record<string, string>;
  /** Body of the answer. Default: the fake's own error body for the status. */
  body?: unknown;
}

/** Faults answered in the order queued, each to as many matching requests as its `times`. */
export class FaultQueue<F extends Fault = Fault> {
  private readonly queued: F[] = [];

  /** Queue a fault (`times` default 1). */
  push(fault: F): void {
    this.queued.push({ times: 1, ...fault });
  }

  /** Forget every queued fault. */
  clear(): void {
    this.queued.length = 0;
  }

  /** Faults still queued. */
  get size(): number {
    return this.queued.length;
  }

  /** The first fault matching `req` (path prefix, query values, `match`), counted down and dropped once spent; undefined when none matches. */
  take(req: SeenRequest): F | undefined {
    const fault = this.queued.find((f) => (f.path === undefined || req.path.startsWith(f.path)) && Object.entries(f.query ?? {}).every(([k, v]) => req.query.get(k) === v) && (f.match === undefined || f.match(req)));
    if (fault === undefined) return undefined;
    fault.times = (fault.times ?? 1) - 1;
    if (fault.times <= 0) this.queued.splice(this.queued.indexOf(fault), 1);
    return fault;
  }
}

/**
 * Requests counted on arrival in fixed wall-clock windows (`windowMs`,
 * default one second), per key (a token; default one count for all): the
 * request that makes a window's count pass `limit` and every one after it
 * in that window are over.
 */
export class WindowCounter {
  private readonly windows = new Map<string, { window: number; n: number }>();

  constructor(
    readonly limit: number,
    readonly windowMs: number = 1000,
  ) {}

  /** Count one request; true when it is over the limit. */
  over(key = '', nowMs: number = Date.now()): boolean {
    const window = Math.floor(nowMs / this.windowMs);
    const cur = this.windows.get(key);
    if (cur === undefined || cur.window !== window) {
      this.windows.set(key, { window, n: 1 });
      return 1 > this.limit;
    }
    return ++cur.n > this.limit;
  }
}

/** Wait `ms` (a fake's injected latency); no timer for 0. */
export async function latency(ms: number): Promise<void> {
  if (ms > 0) await new Promise((r) => setTimeout(r, ms));
}

/**
 * A fake API served on a free loopback port: `start()`, every request seen,
 * the TCP connections open now (for the conformance suite's resource
 * checks), `close()`. A subclass answers in {@link handle}.
 */
export abstract class LoopbackFake {
  /** Base URL once started, e.g. `http://127.0.0.1:40123`. */
  url = '';
  private api: FakeApi | undefined;

  /** Start listening on a free loopback port. */
  async start(): Promise<this> {
    this.api = await fakeApi((req, res) => this.handle(req, res));
    this.url = this.api.url;
    return this;
  }

  /** Every request seen. */
  get requests(): SeenRequest[] {
    return this.api?.requests ?? [];
  }

  /** TCP connections open right now (keep-alive ones included). */
  openConnections(): number {
    return this.api?.openConnections() ?? 0;
  }

  /** Stop the server (open sockets destroyed). */
  async close(): Promise<void> {
    await this.api?.close();
  }

  /** Answer one request. */
  protected abstract handle(req: SeenRequest, res: http.ServerResponse): Promise<void>;
}
