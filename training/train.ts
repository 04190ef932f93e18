import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import cliProgress from 'cli-progress';
import { Command, InvalidArgumentError, Option } from 'commander';
import { BACKEND_CHOICES, type BackendChoice } from '../contract/backend.ts';
import type { Evaluation } from '../contract/model-card.ts';
import { DEFAULT_AUGMENT, createRng, shuffledIndices } from './augment.ts';
import { buildCard, DEFAULT_TEMPLATE_FILE, readAlignmentTemplate, renderModelReadme, writeCard } from './card.ts';
import { loadCheckpoint, saveCheckpoint, type CheckpointMeta } from './checkpoint.ts';
import { classCounts, FER_PIXELS, FER_SIDE, readFer2013, type FerSplit } from './data/fer2013.ts';
import { argmaxRows, evaluatePredictions, formatEvaluation } from './evaluation.ts';
import { flopsPerFace } from './model/vgg.ts';
import { nonNegative, nonNegativeInt, positiveInt, positiveNumber } from './cli-args.ts';
import { DEFAULT_CANDIDATE_DIR, promote, PromotionRefused, SERVED_MODEL_DIR } from './promote.ts';
import { DEFAULT_DATA, isMainModule, REPO_ROOT } from './paths.ts';
import { Replica } from './replica-pool.ts';
import { classWeightsFor, learningRateAt } from './schedule.ts';
import type { TrainState } from './worker-protocol.ts';

export const NORMALISATION = { scale: 1 / 127.5, offset: -1 };

export interface TrainOptions {
  data: string;
  out: string;
  width: number;
  epochs: number;
  batch: number;
  lr: number;
  warmupSteps: number;
  seed: number;
  workers: number;
  backend: BackendChoice;
  batchNorm: boolean;
  labelSmoothing: number;
  classWeightPower: number;
  augment: boolean;
  /** max rotation (degrees), shift and zoom (fractions) of the random augmentation */
  rotate: number;
  shift: number;
  zoom: number;
  /** the first lowResEpochs epochs train on faces downscaled to lowResSide (cheaper convolutions) */
  lowResEpochs: number;
  lowResSide: number;
  backboneWeights?: string;
  checkpointDir: string;
  resume: boolean;
  skipBad: boolean;
  limit?: number;
  evalLimit?: number;
  /**
   * First epoch (1-based) whose model is scored on PublicTest (the last always is); undefined = 1.
   * An evaluation's batch-norm recalibration draws dropout masks, so this changes later steps too.
   */
  evalFrom?: number;
  template: string;
  float16: boolean;
  /** score (and have the server run) each face averaged with its mirror image */
  mirrorAverage: boolean;
  progress: boolean;
}

export interface TrainResult {
  bestAccuracy: number;
  bestEpoch: number;
  history: CheckpointMeta['history'];
}

function log(message: string): void {
  process.stderr.write(`[train ${new Date().toISOString().slice(11, 19)}] ${message}\n`);
}

function head(split: FerSplit, limit: number | undefined): FerSplit {
  if (limit === undefined || limit >= split.count) return split;
  const images = new Uint8Array(new SharedArrayBuffer(limit * FER_PIXELS));
  images.set(split.images.subarray(0, limit * FER_PIXELS));
  const labels = new Uint8Array(new SharedArrayBuffer(limit));
  labels.set(split.labels.subarray(0, limit));
  return { usage: split.usage, count: limit, images, labels };
}

/** Predicts a split on every replica in parallel (each takes a contiguous share). */
async function predictSplit(replicas: Replica[], split: FerSplit, tta: boolean): Promise<Float32Array> {
  const share = Math.ceil(split.count / replicas.length);
  const parts = await Promise.all(
    replicas.map((r, i) => {
      const start = Math.min(split.count, i * share);
      const end = Math.min(split.count, start + share);
      return r.request({ type: 'predict', images: split.images, start, end, tta }, 'predicted');
    }),
  );
  const probs = new Float32Array(split.count * 7);
  let offset = 0;
  for (const p of parts) {
    probs.set(p.probs, offset);
    offset += p.probs.length;
  }
  return probs;
}

/** Training faces (unaugmented) whose batch statistics become the BN moving statistics before each evaluation. */
export const BN_CALIBRATION_FACES = 4096;

function calibrationIndices(count: number, seed: number): Int32Array {
  return shuffledIndices(count, createRng(seed * 7919 - 1)).slice(0, Math.min(count, BN_CALIBRATION_FACES));
}

/** BN recalibration, then PublicTest on all replicas. */
async function evaluateReplicas(replicas: Replica[], trainSplit: FerSplit, valSplit: FerSplit, options: TrainOptions): Promise<Evaluation> {
  if (options.batchNorm) {
    // Same faces on every replica, so their moving statistics stay identical.
    const indices = calibrationIndices(trainSplit.count, options.seed);
    await Promise.all(replicas.map((r) => r.request({ type: 'recalibrate', indices, batch: 128 }, 'recalibrated')));
  }
  const probs = await predictSplit(replicas, valSplit, options.mirrorAverage);
  return evaluatePredictions('PublicTest', valSplit.labels, argmaxRows(probs));
}

function averageGradients(parts: { grads: Float32Array[]; n: number }[]): Float32Array[] {
  const total = parts.reduce((a, p) => a + p.n, 0);
  const first = parts[0]!;
  return first.grads.map((g, v) => {
    const out = new Float32Array(g.length);
    for (const p of parts) {
      const w = p.n / total;
      const src = p.grads[v]!;
      for (let i = 0; i < out.length; i++) out[i]! += src[i]! * w;
    }
    return out;
  });
}

export async function train(options: TrainOptions): Promise<TrainResult> {
  const started = Date.now();
  if (options.lowResEpochs >= options.epochs) throw new Error(`--low-res-epochs (${options.lowResEpochs}) must be less than --epochs (${options.epochs}): the last epochs train at ${FER_SIDE}x${FER_SIDE}`);
  const template = await readAlignmentTemplate(options.template);
  log(`reading ${options.data}`);
  const data = await readFer2013(options.data, { usages: ['Training', 'PublicTest'], skipBad: options.skipBad, shared: true });
  if (data.skipped.length) log(`skipped ${data.skipped.length} malformed rows (first: line ${data.skipped[0]!.line}: ${data.skipped[0]!.reason})`);
  if (!data.splits.Training) throw new Error(`${options.data} has no Training rows`);
  if (!data.splits.PublicTest) throw new Error(`${options.data} has no PublicTest rows (needed for model selection)`);
  const trainSplit = head(data.splits.Training, options.limit);
  const valSplit = head(data.splits.PublicTest, options.evalLimit);
  const counts = classCounts(trainSplit.labels);
  const classWeights = classWeightsFor(counts, options.classWeightPower);
  log(`Training ${trainSplit.count} faces (per class ${counts.join('/')}), PublicTest ${valSplit.count}; class weights ${classWeights.map((w) => w.toFixed(2)).join('/')}`);

  const workers = Math.max(1, Math.min(options.workers, options.batch));
  const replicas = Array.from({ length: workers }, () => new Replica());
  try {
    const ready = await Promise.all(
      replicas.map((r, workerIndex) =>
        r.request(
          {
            type: 'init',
            workerIndex,
            backend: options.backend,
            width: options.width,
            batchNorm: options.batchNorm,
            seed: options.seed,
            images: trainSplit.images,
            labels: trainSplit.labels,
            normalisation: NORMALISATION,
            augment: options.augment ? { flip: true, rotateDeg: options.rotate, shift: options.shift, zoom: options.zoom } : { flip: false, rotateDeg: 0, shift: 0, zoom: 0 },
            classWeights,
            labelSmoothing: options.labelSmoothing,
            backboneWeights: options.backboneWeights,
          },
          'ready',
        ),
      ),
    );
    const { backend, parameters } = ready[0]!;
    if (ready.some((r) => Math.abs(r.checksum - ready[0]!.checksum) > 1e-3 * Math.abs(ready[0]!.checksum))) {
      throw new Error('replicas initialised with different weights');
    }
    log(`${workers} worker(s) on the ${backend} backend; VGG16 width ${options.width}: ${parameters.toLocaleString('en')} parameters, ${(flopsPerFace(options.width) / 1e6).toFixed(1)} MFLOPs/face`);

    const stepsPerEpoch = Math.floor(trainSplit.count / options.batch);
    if (stepsPerEpoch === 0) throw new Error(`--batch ${options.batch} is larger than the ${trainSplit.count} training faces`);
    const totalSteps = stepsPerEpoch * options.epochs;
    let meta: CheckpointMeta = {
      version: 1,
      options: { width: options.width, batchNorm: options.batchNorm, batch: options.batch, seed: options.seed, epochs: options.epochs, lr: options.lr, lowResEpochs: options.lowResEpochs, lowResSide: options.lowResSide },
      epochsDone: 0,
      globalStep: 0,
      bestAccuracy: -1,
      bestEpoch: 0,
      history: [],
      wallSeconds: 0,
    };
    if (options.resume) {
      const checkpoint = await loadCheckpoint(options.checkpointDir);
      for (const key of ['width', 'batchNorm', 'batch', 'seed'] as const) {
        if (checkpoint.meta.options[key] !== meta.options[key]) {
          throw new Error(`--resume: checkpoint has ${key}=${String(checkpoint.meta.options[key])}, this run ${String(meta.options[key])}`);
        }
      }
      await Promise.all(replicas.map((r) => r.request({ type: 'setState', state: checkpoint.state }, 'stateSet')));
      meta = { ...checkpoint.meta, options: meta.options };
      log(`resumed from ${options.checkpointDir} after epoch ${meta.epochsDone} (best ${(100 * meta.bestAccuracy).toFixed(1)}% at epoch ${meta.bestEpoch})`);
    }
    const wallBefore = meta.wallSeconds;
    const evalFrom = Math.min(options.epochs, options.evalFrom ?? 1);
    if (evalFrom > 1) log(`PublicTest is scored from epoch ${evalFrom} on (--eval-from); earlier epochs report training loss and accuracy`);

    await mkdir(options.out, { recursive: true });
    for (let epoch = meta.epochsDone; epoch < options.epochs; epoch++) {
      const epochStart = Date.now();
      const side = epoch < options.lowResEpochs ? options.lowResSide : FER_SIDE;
      const order = shuffledIndices(trainSplit.count, createRng(options.seed * 7919 + epoch));
      const bar = new cliProgress.SingleBar(
        {
          format: `epoch ${epoch + 1}/${options.epochs} [{bar}] {percentage}% {value}/{total} steps | loss {loss} | acc {acc} | lr {lr} | {speed} img/s | ETA {eta_formatted}`,
          noTTYOutput: true,
          notTTYSchedule: 60_000,
          etaBuffer: 50,
          stream: process.stderr,
        },
        cliProgress.Presets.shades_classic,
      );
      if (options.progress) bar.start(stepsPerEpoch, 0, { loss: '-', acc: '-', lr: '-', speed: '-' });
      let lossSum = 0;
      let correct = 0;
      let seen = 0;
      let gradMs = 0;
      let applyMs = 0;
      for (let step = 0; step < stepsPerEpoch; step++) {
        const batch = order.subarray(step * options.batch, (step + 1) * options.batch);
        const share = Math.ceil(batch.length / workers);
        const gradStart = Date.now();
        const parts = await Promise.all(
          replicas.map((r, w) =>
            r.request(
              { type: 'grad', indices: batch.slice(w * share, (w + 1) * share), augmentSeed: (options.seed * 1_000_003 + meta.globalStep * 31 + w) >>> 0, side },
              'grad',
            ),
          ),
        );
        const applyStart = Date.now();
        gradMs += applyStart - gradStart;
        const averaged = averageGradients(parts);
        const lr = learningRateAt(meta.globalStep, totalSteps, options.lr, options.warmupSteps);
        await Promise.all(
          replicas.map((r, w) => {
            const grads = w === workers - 1 ? averaged : averaged.map((g) => g.slice());
            return r.request({ type: 'apply', grads, learningRate: lr }, 'applied', grads.map((g) => g.buffer as ArrayBuffer));
          }),
        );
        applyMs += Date.now() - applyStart;
        meta.globalStep++;
        for (const p of parts) {
          lossSum += p.loss * p.n;
          correct += p.correct;
          seen += p.n;
        }
        if (options.progress) {
          bar.update(step + 1, {
            loss: (lossSum / seen).toFixed(3),
            acc: `${((100 * correct) / seen).toFixed(1)}%`,
            lr: lr.toExponential(1),
            speed: (seen / ((Date.now() - epochStart) / 1000)).toFixed(0),
          });
        }
      }
      if (options.progress) bar.stop();

      const evaluation = epoch + 1 >= evalFrom ? await evaluateReplicas(replicas, trainSplit, valSplit, options) : undefined;
      const seconds = (Date.now() - epochStart) / 1000;
      meta.epochsDone = epoch + 1;
      meta.wallSeconds = wallBefore + (Date.now() - started) / 1000;
      meta.history.push({ epoch: epoch + 1, loss: lossSum / seen, trainAccuracy: correct / seen, accuracy: evaluation?.accuracy ?? null, macroF1: evaluation?.macroF1 ?? null, seconds });
      const scores = evaluation ? `PublicTest acc ${(100 * evaluation.accuracy).toFixed(2)}%, macro-F1 ${(100 * evaluation.macroF1).toFixed(2)}%, ` : '';
      log(
        `epoch ${epoch + 1}/${options.epochs}${side === FER_SIDE ? '' : ` (${side}x${side} faces)`}: loss ${(lossSum / seen).toFixed(4)}, train acc ${((100 * correct) / seen).toFixed(1)}%, ` +
          `${scores}${seconds.toFixed(0)} s ` +
          `(${(seen / ((gradMs + applyMs) / 1000)).toFixed(1)} img/s; per step: gradients ${(gradMs / stepsPerEpoch).toFixed(0)} ms, averaging + update ${(applyMs / stepsPerEpoch).toFixed(0)} ms)`,
      );
      if (evaluation && evaluation.accuracy > meta.bestAccuracy) {
        meta.bestAccuracy = evaluation.accuracy;
        meta.bestEpoch = epoch + 1;
        await replicas[0]!.request({ type: 'save', dir: options.out, float16: options.float16 }, 'saved');
        const card = buildCard({
          version: `${new Date().toISOString().slice(0, 10)}-w${options.width}-e${epoch + 1}`,
          width: options.width,
          batchNorm: options.batchNorm,
          parameters,
          flopsPerFace: flopsPerFace(options.width),
          normalisation: NORMALISATION,
          alignment: template,
          training: {
            dataset: path.basename(options.data),
            datasetSha256: data.sha256,
            epochs: options.epochs,
            bestEpoch: epoch + 1,
            batchSize: options.batch,
            optimizer: `Adamax (peak lr ${options.lr}, ${options.warmupSteps}-step warm-up, cosine decay), categorical cross-entropy, label smoothing ${options.labelSmoothing}, class-weight power ${options.classWeightPower}`,
            augmentation: describeAugmentation(options),
            seed: options.seed,
            backend,
            workers,
            wallSeconds: Math.round(meta.wallSeconds),
            weightsDtype: options.float16 ? 'float16' : 'float32',
          },
          inference: { mirrorAverage: options.mirrorAverage },
          evaluation,
        });
        await writeCard(options.out, card);
        await writeFile(path.join(options.out, 'README.md'), renderModelReadme(card, await readTradeoff(options.out)));
        log(`saved the new best model to ${options.out}\n${formatEvaluation(evaluation)}`);
      }
      const state = (await replicas[0]!.request({ type: 'getState' }, 'state')).state as TrainState;
      await saveCheckpoint(options.checkpointDir, meta, state);
    }
    log(`done in ${((Date.now() - started) / 60000).toFixed(1)} min: best PublicTest accuracy ${(100 * meta.bestAccuracy).toFixed(2)}% at epoch ${meta.bestEpoch}`);
    return { bestAccuracy: meta.bestAccuracy, bestEpoch: meta.bestEpoch, history: meta.history };
  } finally {
    await Promise.all(replicas.map((r) => r.close()));
  }
}

function describeAugmentation(o: Pick<TrainOptions, 'augment' | 'rotate' | 'shift' | 'zoom' | 'lowResEpochs' | 'lowResSide'>): string {
  const lowRes = o.lowResEpochs > 0 ? `; epochs 1-${o.lowResEpochs} on faces downscaled to ${o.lowResSide}x${o.lowResSide}` : '';
  if (!o.augment) return `none${lowRes}`;
  return `random horizontal flips, rotations (+-${o.rotate} degrees), shifts (+-${100 * o.shift}%), zoom (+-${100 * o.zoom}%)${lowRes}`;
}

/** The width/speed trade-off is measured separately (training/TRADEOFF.md) and copied into the model README. */
async function readTradeoff(outDir: string): Promise<string> {
  for (const file of [path.join(import.meta.dirname, 'TRADEOFF.md'), path.join(outDir, 'TRADEOFF.md')]) {
    try {
      return await readFile(file, 'utf8');
    } catch {
      // try the next
    }
  }
  return '';
}

/** Five 2x2 poolings must still end at 1x1, as at 48, so the dense head sees the same features. */
function lowResSide(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 32 || n > FER_SIDE) throw new InvalidArgumentError(`must be an integer from 32 to ${FER_SIDE}`);
  return n;
}

/**
 * The default run spends its first 12 of 26 epochs on 32x32 faces (~55% of a 48x48 epoch's time)
 * and scores only its last 4 (each scoring ~35 s; with cosine decay the best epoch was the last or
 * within 0.3 points of it in every earlier default run): 128 min here, 63.3% on PublicTest at
 * epoch 24 (the 24-epoch, 10-low-res default before it: 62.8%). Both scale with --epochs.
 */
export const LOW_RES_SHARE = 6 / 13;
export const SCORED_LAST_EPOCHS = 4;

/** Fills the CLI options whose defaults depend on --epochs (left undefined by the parser). */
export function withRunDefaults(o: Omit<TrainOptions, 'lowResEpochs'> & { lowResEpochs?: number }): TrainOptions {
  return {
    ...o,
    lowResEpochs: o.lowResEpochs ?? Math.round(o.epochs * LOW_RES_SHARE),
    evalFrom: o.evalFrom ?? Math.max(1, o.epochs - SCORED_LAST_EPOCHS + 1),
  };
}

export function trainCommand(): Command {
  return new Command('train')
    .description('Train the VGG16-topology emotion model on FER2013 into a candidate folder (models/candidate/); --promote serves it if it is not worse')
    .option('--data <file>', 'FER2013 csv or csv.gz (emotion,pixels,Usage)', DEFAULT_DATA)
    .option('--out <dir>', 'where the best model, card.json and README.md go (a candidate: the server does not serve it until promoted)', DEFAULT_CANDIDATE_DIR)
    .option('--promote', 'after training, serve the candidate (models/emotion/) if it is not worse on PublicTest than the served model', false)
    .option('--force-promote', 'with --promote: serve it even if it scores worse', false)
    .option('--width <multiplier>', 'VGG16 width multiplier (1 = 64..512 filters)', positiveNumber, 0.25)
    .option('--epochs <n>', 'epochs', positiveInt, 26)
    .option('--batch <n>', 'global batch size (split across workers)', positiveInt, 64)
    .option('--lr <rate>', 'peak Adamax learning rate', positiveNumber, 0.0035)
    .option('--warmup-steps <n>', 'linear warm-up steps', positiveInt, 100)
    .option('--seed <n>', 'seed for initialisation, shuffling and augmentation', positiveInt, 42)
    .option('--workers <n>', 'data-parallel worker threads', positiveInt, Math.min(2, Math.max(1, os.availableParallelism())))
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(BACKEND_CHOICES).default('auto'))
    .option('--no-batch-norm', 'plain VGG16 without batch normalisation')
    .option('--label-smoothing <x>', 'label smoothing', nonNegative, 0)
    .option('--class-weight-power <x>', '0 = no class weighting, 1 = inverse frequency', nonNegative, 0.3)
    .option('--no-augment', 'no flips/rotations/shifts/zoom')
    .option('--rotate <degrees>', 'augmentation: max random rotation', nonNegative, DEFAULT_AUGMENT.rotateDeg)
    .option('--shift <fraction>', 'augmentation: max random shift, as a fraction of the side', nonNegative, DEFAULT_AUGMENT.shift)
    .option('--zoom <fraction>', 'augmentation: max random zoom, 1 +- this', nonNegative, DEFAULT_AUGMENT.zoom)
    .option('--low-res-epochs <n>', `train the first n epochs on faces downscaled to --low-res-side pixels (cheaper), then at 48 (default: 6/13 of --epochs, rounded: 12 of 26)`, nonNegativeInt)
    .option('--low-res-side <pixels>', 'side of the low-resolution faces, 32-48 (the VGG base still ends at 1x1)', lowResSide, 32)
    .option('--backbone-weights <file>', 'initialise the conv base from a Keras VGG16 notop .h5 (ImageNet)')
    .option('--checkpoint-dir <dir>', 'per-epoch checkpoints for --resume', path.join(REPO_ROOT, '.train-checkpoints'))
    .option('--resume', 'continue from the checkpoint in --checkpoint-dir', false)
    .option('--skip-bad', 'skip malformed csv rows (counted) instead of failing', false)
    .option('--limit <n>', 'use only the first n Training rows', positiveInt)
    .option('--eval-limit <n>', 'use only the first n PublicTest rows', positiveInt)
    .option('--eval-from <epoch>', `score PublicTest and keep the best model from this epoch on (the last epoch always); saves ~35 s an epoch (default: the last ${SCORED_LAST_EPOCHS} epochs)`, positiveInt)
    .option('--template <file>', 'FER2013 alignment template (npm run template)', DEFAULT_TEMPLATE_FILE)
    .option('--no-float16', 'store float32 weights instead of float16')
    .option('--no-mirror-average', 'score single faces, not each face averaged with its mirror (the card tells the server which)')
    .option('--no-progress', 'no progress bar');
}

async function main(): Promise<void> {
  const command = trainCommand();
  command.parse(process.argv);
  const raw = command.opts<TrainOptions & { promote: boolean; forcePromote: boolean }>();
  const o = withRunDefaults(raw);
  if (!o.resume) await rm(o.checkpointDir, { recursive: true, force: true });
  const out = path.resolve(o.out);
  if (out === SERVED_MODEL_DIR && !raw.promote) {
    process.stderr.write(`train: writing straight into ${SERVED_MODEL_DIR}: a running server reloads every new best epoch of this run\n`);
  }
  await train({ ...o, data: path.resolve(o.data), out });
  if (raw.promote && out !== SERVED_MODEL_DIR) {
    await promote(out, { target: SERVED_MODEL_DIR, data: path.resolve(o.data), force: raw.forcePromote, backend: o.backend });
  } else if (out !== SERVED_MODEL_DIR) {
    process.stderr.write(`train: the candidate is in ${out}; the server still serves ${SERVED_MODEL_DIR}. To serve the candidate if it is not worse on PublicTest: npm run promote -- ${path.relative(process.cwd(), out) || out}\n`);
  }
}

if (isMainModule(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`train: ${(error as Error).message}\n`);
    process.exitCode = error instanceof PromotionRefused ? 2 : 1;
  });
}
