/**
 * A fake API on loopback: a real `node:http` server on a free port whose
 * answers come from a handler, recording every request (method, path, query,
 * headers, arrival time). Stopped by `close()` (open sockets destroyed).
 */
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';

export interface SeenRequest {
  method: string;
  path: string;
  query: URLSearchParams;
  headers: http.IncomingHttpHeaders;
  /** performance.now() at arrival. */
  at: number;
  body: string;
}

export type Handler = (req: SeenRequest, res: http.ServerResponse, n: number) => void | Promise<void>;

export interface FakeApi {
  url: string;
  requests: SeenRequest[];
  /** TCP connections open right now (keep-alive ones included). */
  openConnections(): number;
  close(): Promise<void>;
}

/** Start a server answering with `handler` (`n` counts requests from 0). */
export async function fakeApi(handler: Handler): Promise<FakeApi> {
  const requests: SeenRequest[] = [];
  const sockets = new Set<Socket>();
  const server = http.createServer((req, res) => {
    const at = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://x');
      const seen: SeenRequest = { method: req.method ?? 'GET', path: u.pathname, query: u.searchParams, headers: req.headers, at, body: Buffer.concat(chunks).toString() };
      const n = requests.push(seen) - 1;
      Promise.resolve(handler(seen, res, n)).catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    openConnections: () => sockets.size,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Answer JSON with `status` and extra headers. */
export function sendJson(res: http.ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}
