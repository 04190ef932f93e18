import { Worker, type WorkerOptions } from 'node:worker_threads';

/**
 * Starts a worker thread from a TypeScript module. Workers don't inherit tsx's loader from the
 * parent (and `--import tsx` in execArgv is not honoured for workers on Node 20), so a tiny ESM
 * bootstrap registers tsx inside the worker first, then imports the real module.
 */
export function createTsWorker(moduleUrl: URL, options: WorkerOptions = {}): Worker {
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const bootstrap =
    `import { register } from ${JSON.stringify(tsxApi)};\n` +
    `register();\n` +
    `await import(${JSON.stringify(moduleUrl.href)});\n`;
  return new Worker(new URL(`data:text/javascript,${encodeURIComponent(bootstrap)}`), options);
}
