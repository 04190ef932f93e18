/**
 * Measures the FER2013 alignment template: where eyes and mouth sit in a 48x48 training face.
 * A deterministic sample of Training rows is upscaled (with a grey margin so the detector sees a
 * face in context), run through face-api (detector + 68 landmarks, wasm backend, weights from the
 * npm package), and the median eye and mouth centres, mapped back to 48x48 crop pixels, are written
 * to training/alignment-template.json (the model card's `alignment` field) with spreads in a
 * sibling .stats.json file.
 *
 *   npm run template -- [--data FILE] [--samples 3000] [--seed 1] [--detector tiny|ssd]
 */
import { createRng } from './augment.ts';
import { createReadStream } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { createGunzip } from 'node:zlib';
import { Command, InvalidArgumentError } from 'commander';
import sharp from 'sharp';
import { alignmentTemplateSchema, type AlignmentTemplate } from '../contract/model-card.ts';
import { facePointsFrom68 } from '../contract/face-points.ts';
import type { Point } from '../contract/geometry.ts';
import { FER_PIXELS, FER_SIDE, parseFerRow } from './data/fer2013.ts';
import { createFaceLandmarker, type DetectorName, type LandmarkedFace } from './face-landmarks.ts';
import { tf } from '../contract/backend.ts';

const repoRoot = path.resolve(import.meta.dirname, '..');

interface Options {
  data: string;
  samples: number;
  seed: number;
  detector: DetectorName;
  upscale: number;
  margin: number;
  out: string;
  stats: string;
  picture: string;
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

function parseOptions(argv: string[]): Options {
  const program = new Command()
    .name('template')
    .option('--data <file>', 'FER2013 csv or csv.gz', path.resolve(repoRoot, '../shared/datasets/fer2013/fer2013-train-public.csv.gz'))
    .option('--samples <n>', 'Training faces to sample', positiveInt, 3000)
    .option('--seed <n>', 'sampling seed', positiveInt, 1)
    .option('--detector <name>', 'face-api detector: tiny or ssd', 'tiny')
    .option('--upscale <n>', 'upscale factor of the 48x48 faces', positiveInt, 4)
    .option('--margin <px>', 'grey margin around the upscaled face', positiveInt, 96)
    .option('--out <file>', 'template JSON', path.join(repoRoot, 'training/alignment-template.json'))
    .option('--stats <file>', 'spread statistics JSON', path.join(repoRoot, 'training/alignment-template.stats.json'))
    .option('--picture <file>', 'mean face with the template drawn (PNG)', path.join(repoRoot, 'test-artifacts/template-mean-face.png'))
    .parse(argv);
  const o = program.opts<Options>();
  if (o.detector !== 'tiny' && o.detector !== 'ssd') throw new InvalidArgumentError('--detector must be tiny or ssd');
  return o;
}

/** Reservoir sample of Training rows (uniform, deterministic for a seed), streamed from the csv(.gz). */
async function sampleTrainingFaces(file: string, count: number, seed: number): Promise<{ faces: Uint8Array[]; trainingRows: number }> {
  const random = createRng(seed);
  const input = createReadStream(file);
  const lines = createInterface({ input: file.endsWith('.gz') ? input.pipe(createGunzip()) : input, crlfDelay: Infinity });
  const reservoir: string[] = [];
  let seen = 0;
  let header = true;
  for await (const line of lines) {
    if (header) {
      header = false;
      continue;
    }
    if (!line.trimEnd().endsWith(',Training')) continue;
    if (seen < count) reservoir.push(line);
    else {
      const j = Math.floor(random() * (seen + 1));
      if (j < count) reservoir[j] = line;
    }
    seen++;
  }
  return { faces: reservoir.map((line) => parseFerRow(line).pixels), trainingRows: seen };
}

/** The 48x48 face upscaled (bilinear, half-pixel centres: crop x = (X - margin) / upscale) with a grey margin, as RGB. */
function detectorInput(pixels: Uint8Array, upscale: number, margin: number): tf.Tensor3D {
  return tf.tidy(() => {
    const face = tf.tensor3d(Float32Array.from(pixels), [FER_SIDE, FER_SIDE, 1]);
    const big = tf.image.resizeBilinear(face, [FER_SIDE * upscale, FER_SIDE * upscale], false, true);
    const padded = tf.pad(big, [[margin, margin], [margin, margin], [0, 0]], 128);
    return tf.tile(padded, [1, 1, 3]);
  });
}

interface Measured {
  leftEye: Point;
  rightEye: Point;
  mouth: Point;
}

function quantile(sorted: number[], q: number): number {
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (i - lo);
}

function spread(values: number[]): { median: number; q1: number; q3: number; iqr: number } {
  const sorted = [...values].sort((x, y) => x - y);
  const q1 = quantile(sorted, 0.25);
  const q3 = quantile(sorted, 0.75);
  return { median: quantile(sorted, 0.5), q1, q3, iqr: q3 - q1 };
}

const round2 = (n: number): number => Math.round(n * 100) / 100;

/** Mean of the sampled faces, upscaled, with the template points drawn as dots (for looking at). */
async function writePicture(file: string, faces: Uint8Array[], template: AlignmentTemplate): Promise<void> {
  const scale = 6;
  const side = FER_SIDE * scale;
  const mean = new Float64Array(FER_PIXELS);
  for (const face of faces) for (let i = 0; i < FER_PIXELS; i++) mean[i]! += face[i]!;
  const rgb = Buffer.alloc(side * side * 3);
  for (let y = 0; y < side; y++) {
    for (let x = 0; x < side; x++) {
      const v = mean[Math.floor(y / scale) * FER_SIDE + Math.floor(x / scale)]! / faces.length;
      rgb.fill(Math.round(v), (y * side + x) * 3, (y * side + x) * 3 + 3);
    }
  }
  for (const [px, py] of [template.leftEye, template.rightEye, template.mouth]) {
    for (let dy = -3; dy <= 3; dy++) {
      for (let dx = -3; dx <= 3; dx++) {
        const x = Math.round(px * scale) + dx;
        const y = Math.round(py * scale) + dy;
        if (x < 0 || y < 0 || x >= side || y >= side) continue;
        rgb.set([255, 0, 0], (y * side + x) * 3);
      }
    }
  }
  await mkdir(path.dirname(file), { recursive: true });
  await sharp(rgb, { raw: { width: side, height: side, channels: 3 } }).png().toFile(file);
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv);
  const started = Date.now();
  const { faces, trainingRows } = await sampleTrainingFaces(options.data, options.samples, options.seed);
  console.log(`sampled ${faces.length} of ${trainingRows} Training rows in ${Date.now() - started} ms`);

  const landmarker = await createFaceLandmarker({ detector: options.detector });
  const measured: Measured[] = [];
  const landmarkedFaces: Uint8Array[] = [];
  const crop = (p: Point): Point => [(p[0] - options.margin) / options.upscale, (p[1] - options.margin) / options.upscale];
  for (const [i, pixels] of faces.entries()) {
    const input = detectorInput(pixels, options.upscale, options.margin);
    let found: LandmarkedFace[];
    try {
      found = await landmarker.detect(input);
    } finally {
      input.dispose();
    }
    const best = found.reduce<LandmarkedFace | undefined>((a, f) => (a && a.score >= f.score ? a : f), undefined);
    if (best) {
      const points = facePointsFrom68(best.landmarks.map(crop));
      measured.push(points);
      landmarkedFaces.push(pixels);
    }
    if ((i + 1) % 250 === 0) console.log(`${i + 1}/${faces.length} faces, ${measured.length} with landmarks, ${Math.round((Date.now() - started) / 1000)} s`);
  }
  if (measured.length === 0) throw new Error('face-api found no face in the sample');

  const coords = {
    leftEyeX: spread(measured.map((m) => m.leftEye[0])),
    leftEyeY: spread(measured.map((m) => m.leftEye[1])),
    rightEyeX: spread(measured.map((m) => m.rightEye[0])),
    rightEyeY: spread(measured.map((m) => m.rightEye[1])),
    mouthX: spread(measured.map((m) => m.mouth[0])),
    mouthY: spread(measured.map((m) => m.mouth[1])),
    interocular: spread(measured.map((m) => Math.hypot(m.rightEye[0] - m.leftEye[0], m.rightEye[1] - m.leftEye[1]))),
    eyeRollDegrees: spread(measured.map((m) => (Math.atan2(m.rightEye[1] - m.leftEye[1], m.rightEye[0] - m.leftEye[0]) * 180) / Math.PI)),
  };
  const rate = measured.length / faces.length;
  const template = alignmentTemplateSchema.parse({
    size: FER_SIDE,
    leftEye: [round2(coords.leftEyeX.median), round2(coords.leftEyeY.median)],
    rightEye: [round2(coords.rightEyeX.median), round2(coords.rightEyeY.median)],
    mouth: [round2(coords.mouthX.median), round2(coords.mouthY.median)],
    source:
      `FER2013 Training, ${faces.length} rows sampled uniformly (seed ${options.seed}) of ${trainingRows}; ` +
      `each 48x48 face upscaled x${options.upscale} (bilinear) with a ${options.margin}px grey margin, ` +
      `face-api 1.7.15 ${options.detector === 'ssd' ? 'SSD MobileNet v1' : 'tiny face detector'} + 68 landmarks (wasm); ` +
      `${measured.length} faces (${(rate * 100).toFixed(1)}%) had landmarks. ` +
      `Medians of the per-face eye centres (mean of the 6 points of each eye; left = image left) and mouth centre ` +
      `(mean of the 20 lip points 48-67), in crop pixels with pixel centres at +0.5. ` +
      `IQR x/y: left eye ${round2(coords.leftEyeX.iqr)}/${round2(coords.leftEyeY.iqr)}, ` +
      `right eye ${round2(coords.rightEyeX.iqr)}/${round2(coords.rightEyeY.iqr)}, ` +
      `mouth ${round2(coords.mouthX.iqr)}/${round2(coords.mouthY.iqr)}; ` +
      `interocular median ${round2(coords.interocular.median)} px (IQR ${round2(coords.interocular.iqr)}). ` +
      `Spreads in training/alignment-template.stats.json.`,
    samples: measured.length,
  });

  await writeFile(options.out, `${JSON.stringify(template, null, 2)}\n`);
  const stats = {
    template,
    detector: options.detector,
    sampled: faces.length,
    trainingRows,
    withLandmarks: measured.length,
    detectionRate: round2(rate * 100) / 100,
    seconds: Math.round((Date.now() - started) / 1000),
    spreads: Object.fromEntries(
      Object.entries(coords).map(([k, s]) => [k, { median: round2(s.median), q1: round2(s.q1), q3: round2(s.q3), iqr: round2(s.iqr) }]),
    ),
  };
  await writeFile(options.stats, `${JSON.stringify(stats, null, 2)}\n`);
  await writePicture(options.picture, landmarkedFaces, template);
  console.log(JSON.stringify(template, null, 2));
  console.log(`wrote ${options.out}, ${options.stats}, ${options.picture} in ${stats.seconds} s`);
}

await main();
