/** A tiny learnable FER-format csv and training options for it, shared by the training tests. */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { TrainOptions } from '../training/train.ts';

const repo = path.resolve(import.meta.dirname, '..');

/** 128 Training + 32 PublicTest rows: bright faces are "happy", dark ones "sad". Returns the file. */
export async function writeTinyFer(dir: string): Promise<string> {
  const rows = ['emotion,pixels,Usage'];
  for (let i = 0; i < 160; i++) {
    const label = i % 2 === 0 ? 3 : 4;
    const base = label === 3 ? 170 : 60;
    const px = Array.from({ length: 2304 }, (_, p) => base + ((p * 7 + i * 13) % 40)).join(' ');
    rows.push(`${label},${px},${i < 128 ? 'Training' : 'PublicTest'}`);
  }
  const file = path.join(dir, 'tiny.csv');
  await writeFile(file, rows.join('\n') + '\n');
  return file;
}

/** Every TrainOptions field for a fast run on the tiny csv in `dir` (width 1/16, one epoch). */
export function tinyTrainOptions(dir: string, extra: Partial<TrainOptions> = {}): TrainOptions {
  return {
    data: path.join(dir, 'tiny.csv'),
    out: path.join(dir, 'model'),
    width: 0.0625,
    epochs: 1,
    batch: 16,
    lr: 0.01,
    warmupSteps: 4,
    seed: 7,
    workers: 2,
    backend: 'wasm',
    batchNorm: true,
    labelSmoothing: 0.1,
    classWeightPower: 0.3,
    augment: true,
    rotate: 10,
    shift: 0.1,
    zoom: 0.1,
    lowResEpochs: 0,
    lowResSide: 32,
    checkpointDir: path.join(dir, 'checkpoints'),
    resume: false,
    skipBad: false,
    template: path.join(repo, 'training/alignment-template.json'),
    float16: true,
    mirrorAverage: true,
    progress: false,
    ...extra,
  };
}
