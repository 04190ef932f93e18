/**
 * Faces per second of the emotion model at batch sizes 1, 8, 32 and 64 on the active backend,
 * as ratios against batch 1 measured in the same process. `--widths` also builds untrained models
 * of other widths, to measure the width/speed trade-off the model README reports.
 */
import path from 'node:path';
import { Command, Option } from 'commander';
import { BACKEND_CHOICES, initBackend, tf, type BackendChoice } from '../contract/backend.ts';
import { loadLayersModelFromDir } from '../contract/model-io.ts';
import { buildVgg16 } from './model/vgg.ts';
import { REPO_ROOT } from './paths.ts';

/** Faces per second of `model` at `batch`, measured for `seconds` after two warm-up runs. */
async function facesPerSecond(model: tf.LayersModel, batch: number, seconds: number): Promise<number> {
  const input = tf.randomUniform([batch, 48, 48, 1], -1, 1);
  try {
    for (let i = 0; i < 2; i++) tf.tidy(() => (model.predict(input) as tf.Tensor).dataSync());
    let faces = 0;
    const start = performance.now();
    while (performance.now() - start < seconds * 1000) {
      tf.tidy(() => (model.predict(input) as tf.Tensor).dataSync());
      faces += batch;
    }
    return faces / ((performance.now() - start) / 1000);
  } finally {
    input.dispose();
  }
}

async function main(): Promise<void> {
  const command = new Command('bench:model')
    .option('--model <dir>', 'model directory', path.join(REPO_ROOT, 'models/emotion'))
    .option('--widths <list>', 'comma-separated widths of untrained VGG16 models to time instead', '')
    .option('--seconds <s>', 'seconds per measurement', '3')
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(BACKEND_CHOICES).default('auto'));
  command.parse(process.argv);
  const o = command.opts<{ model: string; widths: string; seconds: string; backend: BackendChoice }>();
  const seconds = Number(o.seconds);
  if (!(seconds > 0)) throw new Error('--seconds must be positive');
  const backend = await initBackend(o.backend);
  const widths = o.widths ? o.widths.split(',').map(Number) : [];
  const models: { name: string; model: tf.LayersModel }[] = widths.length
    ? widths.map((width) => ({ name: `VGG16 width ${width}`, model: buildVgg16({ width, batchNorm: true, seed: 1 }) }))
    : [{ name: path.relative(process.cwd(), o.model) || o.model, model: await loadLayersModelFromDir(path.resolve(o.model)) }];
  console.log(`backend ${backend}, one thread (the server runs one model per worker thread)`);
  for (const { name, model } of models) {
    console.log(`${name}: ${model.countParams().toLocaleString('en')} parameters`);
    let baseline = 0;
    for (const batch of [1, 8, 32, 64]) {
      const fps = await facesPerSecond(model, batch, seconds);
      baseline ||= fps;
      console.log(`  batch ${String(batch).padStart(2)}: ${fps.toFixed(1).padStart(7)} faces/s  (${(fps / baseline).toFixed(2)}x batch 1)`);
    }
    model.dispose();
  }
}

main().catch((error: unknown) => {
  console.error(`bench:model: ${(error as Error).message}`);
  process.exitCode = 1;
});
