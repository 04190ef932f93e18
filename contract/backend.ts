import { createRequire } from 'node:module';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import { setThreadsCount, setWasmPaths } from '@tensorflow/tfjs-backend-wasm';

import type { BackendChoice } from './backend-choices.ts';

export { BACKEND_CHOICES, type BackendChoice } from './backend-choices.ts';

const require = createRequire(import.meta.url);

/** Folder of the .wasm binaries inside the npm package (never fetched from the network). */
function wasmDir(): string {
  return path.dirname(require.resolve('@tensorflow/tfjs-backend-wasm/dist/tfjs-backend-wasm.wasm')) + path.sep;
}

/**
 * Loads tfjs-node-gpu or tfjs-node when they installed (they are optionalDependencies whose install
 * step downloads libtensorflow, so they are usually absent). Returns the package that loaded.
 */
async function loadNativeBinding(): Promise<string | undefined> {
  for (const pkg of ['@tensorflow/tfjs-node-gpu', '@tensorflow/tfjs-node']) {
    try {
      await import(pkg);
      return pkg;
    } catch {
      // not installed or libtensorflow missing: try the next one
    }
  }
  return undefined;
}

/**
 * Picks and initialises the tfjs backend. `auto` prefers native TensorFlow when it is installed,
 * else wasm. Never falls back silently from an explicit choice: `tensorflow` fails if absent.
 * Returns the name of the backend that runs, for logs and metrics.
 */
export async function initBackend(choice: BackendChoice): Promise<string> {
  if (choice === 'tensorflow' || choice === 'auto') {
    const native = await loadNativeBinding();
    if (native && (await tf.setBackend('tensorflow'))) {
      await tf.ready();
      return 'tensorflow';
    }
    if (choice === 'tensorflow') {
      throw new Error(
        'EMOTION_BACKEND=tensorflow but neither @tensorflow/tfjs-node-gpu nor @tensorflow/tfjs-node could be loaded',
      );
    }
  }
  if (choice === 'cpu') {
    await tf.setBackend('cpu');
    await tf.ready();
    return 'cpu';
  }
  setWasmPaths(wasmDir());
  // Node's wasm backend runs one thread whatever is asked; parallelism comes from worker threads.
  setThreadsCount(1);
  if (!(await tf.setBackend('wasm'))) throw new Error('the tfjs wasm backend failed to initialise');
  await tf.ready();
  return 'wasm';
}

export { tf };
