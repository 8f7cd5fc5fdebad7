#!/usr/bin/env node
import { main } from './main.js';

const controller = new AbortController();
const force: (() => void)[] = [];
let signals = 0;
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    // First signal: abort cleanly (uploads aborted, nothing committed). Second: exit now,
    // unless the command handles it (the scheduler stops its runs); a third exits anyway.
    signals++;
    if (signals === 2 && force.length > 0) {
      for (const f of force) f();
      return;
    }
    if (signals > 1) process.exit(2);
    controller.abort(new Error(`received ${sig}`));
  });
}

main(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  isTTY: Boolean(process.stderr.isTTY),
  signal: controller.signal,
  onForce: (f) => force.push(f),
}).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`dativo: unexpected error: ${(err as Error)?.stack ?? String(err)}\n`);
    process.exitCode = 3;
  },
);
