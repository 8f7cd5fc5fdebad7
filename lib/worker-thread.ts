/**
 * Start a worker thread on a module beside the caller's: the compiled
 * `<name>.js` from dist/, or, run from source (tests, the bench's breakdown
 * modes), `<name>.ts` through tsx. Node 20 does not apply ESM loader hooks
 * (tsx) to worker threads, so such a worker registers tsx's CommonJS hook
 * itself. tsx is a devDependency; compiled code never reaches that branch.
 */
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { Worker, type ResourceLimits } from 'node:worker_threads';

/**
 * `base` is the caller's `import.meta.url`; `name` the worker module's file
 * name without extension; `resourceLimits` as Node's (default: none, Node's own).
 */
export function startModuleWorker(base: string, name: string, resourceLimits?: ResourceLimits): Worker {
  const limits = resourceLimits !== undefined ? { resourceLimits } : {};
  if (!base.endsWith('.ts')) return new Worker(new URL(`./${name}.js`, base), limits);
  const require = createRequire(base);
  const tsx = require.resolve('tsx/cjs/api');
  const file = fileURLToPath(new URL(`./${name}.ts`, base));
  return new Worker(`require(${JSON.stringify(tsx)}).register();\nrequire(${JSON.stringify(file)});`, { eval: true, ...limits });
}
