import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TrainState } from './worker-protocol.ts';

/** What `--resume` needs besides the tensors: where the run was and what it had found. */
export interface CheckpointMeta {
  version: 1;
  options: Record<string, unknown>;
  epochsDone: number;
  globalStep: number;
  bestAccuracy: number;
  bestEpoch: number;
  /** accuracy and macroF1 are null for epochs before --eval-from */
  history: { epoch: number; loss: number; trainAccuracy: number; accuracy: number | null; macroF1: number | null; seconds: number }[];
  wallSeconds: number;
}

type Entry = { name: string; shape: number[]; offset: number; length: number };

export async function saveCheckpoint(dir: string, meta: CheckpointMeta, state: TrainState): Promise<void> {
  await mkdir(dir, { recursive: true });
  const entries: { weights: Entry[]; optimizer: Entry[] } = { weights: [], optimizer: [] };
  const chunks: Buffer[] = [];
  let offset = 0;
  for (const kind of ['weights', 'optimizer'] as const) {
    for (const w of state[kind]) {
      entries[kind].push({ name: w.name, shape: w.shape, offset, length: w.data.length });
      chunks.push(Buffer.from(w.data.buffer, w.data.byteOffset, w.data.byteLength));
      offset += w.data.length;
    }
  }
  await writeFile(path.join(dir, 'state.bin.tmp'), Buffer.concat(chunks));
  await writeFile(path.join(dir, 'checkpoint.json.tmp'), JSON.stringify({ meta, entries }));
  await rename(path.join(dir, 'state.bin.tmp'), path.join(dir, 'state.bin'));
  await rename(path.join(dir, 'checkpoint.json.tmp'), path.join(dir, 'checkpoint.json'));
}

export async function loadCheckpoint(dir: string): Promise<{ meta: CheckpointMeta; state: TrainState }> {
  const { meta, entries } = JSON.parse(await readFile(path.join(dir, 'checkpoint.json'), 'utf8')) as {
    meta: CheckpointMeta;
    entries: { weights: Entry[]; optimizer: Entry[] };
  };
  const bin = await readFile(path.join(dir, 'state.bin'));
  const all = new Float32Array(bin.buffer, bin.byteOffset, bin.byteLength / 4);
  const unpack = (list: Entry[]) => list.map((e) => ({ name: e.name, shape: e.shape, data: all.slice(e.offset, e.offset + e.length) }));
  return { meta, state: { weights: unpack(entries.weights), optimizer: unpack(entries.optimizer) } };
}
