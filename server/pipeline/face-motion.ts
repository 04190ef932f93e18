/**
 * The cheap tracking step: where did a face move since the frame its detector last ran? A small
 * grey patch of the face, taken on that frame (the anchor), is matched against the new frame at
 * whole-cell shifts and three scales (zero-mean sum of absolute differences), refined to a
 * fraction of a cell and between the scales by parabolas through the best score and its
 * neighbours. Under a millisecond a face, where the crop detector costs several: between two
 * detector runs a face that kept its look moves its anchor points by the shift and scale. A match
 * that is poor (the face turned, left, or changed too much), or whose best shift lies on the
 * search border, is no step: the caller runs the crop detector. Pure TypeScript, no tensors.
 */
import type { Box, Point } from '../../contract/geometry.ts';
import type { MotionOptions } from './tracking-options.ts';
import type { FacePoints } from '../../contract/face-points.ts';
import type { FaceAnchor, RgbFrame } from './types.ts';

/** The anchor: a face's grey patch on the frame its detector ran. */
export interface MotionPatch {
  /** cells x cells mean grey levels (0..255), row-major */
  grey: Uint8Array;
  cells: number;
  /** the square of the anchor frame the patch covers, source pixels */
  x: number;
  y: number;
  size: number;
}

/**
 * Estimated move of a face from its anchor: the patch centre moved by (dx, dy) and the face grew
 * by `scale`; `error` is the match error (see MotionOptions.maxError).
 */
export interface MotionEstimate {
  dx: number;
  dy: number;
  scale: number;
  error: number;
}

/** Point samples per cell side when averaging a cell: enough to smooth pixel noise, cheap. */
const SAMPLES = 3;

/** The square a face's patch covers: centred on its detector box, the box's longer side. */
function patchSquare(region: Box): { x: number; y: number; size: number } {
  const size = Math.max(region.width, region.height);
  return { x: region.x + region.width / 2 - size / 2, y: region.y + region.height / 2 - size / 2, size };
}

/**
 * Mean grey of `count` x `count` cells of side `cell` source pixels from (x, y), each the mean of
 * SAMPLES^2 nearest-pixel reads (edge pixels replicated outside the frame).
 */
function sampleCells(frame: RgbFrame, x: number, y: number, cell: number, count: number): Float32Array {
  const { data, width, height } = frame;
  const out = new Float32Array(count * count);
  const step = cell / SAMPLES;
  const xs = new Int32Array(count * SAMPLES);
  for (let i = 0; i < xs.length; i++) xs[i] = Math.min(width - 1, Math.max(0, Math.floor(x + (i + 0.5) * step))) * 3;
  const inv = 1 / (SAMPLES * SAMPLES);
  for (let row = 0; row < count; row++) {
    for (let s = 0; s < SAMPLES; s++) {
      const py = Math.min(height - 1, Math.max(0, Math.floor(y + (row * SAMPLES + s + 0.5) * step)));
      const line = py * width * 3;
      const o = row * count;
      for (let col = 0; col < count; col++) {
        let sum = 0;
        for (let t = 0; t < SAMPLES; t++) {
          const i = line + xs[col * SAMPLES + t]!;
          sum += 0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]!;
        }
        out[o + col]! += sum * inv;
      }
    }
  }
  return out;
}

/** The anchor patch of a face on the frame its detector found it on. */
export function takePatch(frame: RgbFrame, region: Box, cells: number): MotionPatch {
  const square = patchSquare(region);
  const values = sampleCells(frame, square.x, square.y, square.size / cells, cells);
  const grey = new Uint8Array(values.length);
  for (let i = 0; i < values.length; i++) grey[i] = Math.round(values[i]!);
  return { grey, cells, ...square };
}

/** Offset of a parabola's vertex through (-1, a), (0, b), (1, c) from 0, within [-0.5, 0.5]. */
function vertex(a: number, b: number, c: number): number {
  const curvature = a - 2 * b + c;
  if (!(curvature > 0)) return 0;
  return Math.max(-0.5, Math.min(0.5, (a - c) / (2 * curvature)));
}

/** The best whole-cell shift of the patch over `frame` at one scale, refined to a fraction of a cell. */
function matchAtScale(frame: RgbFrame, patch: MotionPatch, patchMean: number, scale: number, reach: number): { dx: number; dy: number; sad: number; onBorder: boolean } {
  const { cells } = patch;
  const cell = (patch.size / cells) * scale;
  const span = cells + 2 * reach;
  const centreX = patch.x + patch.size / 2;
  const centreY = patch.y + patch.size / 2;
  const area = sampleCells(frame, centreX - (cells / 2 + reach) * cell, centreY - (cells / 2 + reach) * cell, cell, span);
  const side = 2 * reach + 1;
  const scores = new Float64Array(side * side);
  let best = 0;
  for (let sy = 0; sy < side; sy++) {
    for (let sx = 0; sx < side; sx++) {
      const k = sy * side + sx;
      scores[k] = zeroMeanSad(area, sy * span + sx, span, patch.grey, patchMean, cells);
      if (scores[k]! < scores[best]!) best = k;
    }
  }
  const bx = best % side;
  const by = Math.floor(best / side);
  const onBorder = bx === 0 || by === 0 || bx === side - 1 || by === side - 1;
  if (onBorder) return { dx: 0, dy: 0, sad: scores[best]!, onBorder };
  const fx = vertex(scores[best - 1]!, scores[best]!, scores[best + 1]!);
  const fy = vertex(scores[best - side]!, scores[best]!, scores[best + side]!);
  const dx = (bx - reach + fx) * cell;
  const dy = (by - reach + fy) * cell;
  // The error at the refined position: at whole-cell shifts, a scale whose grid happens to sit
  // half a cell off the face would lose to a wrong scale that sits better.
  const refined = sampleCells(frame, centreX + dx - (cells / 2) * cell, centreY + dy - (cells / 2) * cell, cell, cells);
  return { dx, dy, sad: zeroMeanSad(refined, 0, cells, patch.grey, patchMean, cells), onBorder };
}

/**
 * Mean absolute difference between the cells x cells window of `values` at `offset` (rows
 * `stride` apart) and the patch, each without its mean: a face that got lighter or darker still
 * matches.
 */
function zeroMeanSad(values: Float32Array, offset: number, stride: number, grey: Uint8Array, greyMean: number, cells: number): number {
  let mean = 0;
  for (let r = 0; r < cells; r++) {
    const o = offset + r * stride;
    for (let c = 0; c < cells; c++) mean += values[o + c]!;
  }
  mean /= cells * cells;
  let sad = 0;
  for (let r = 0; r < cells; r++) {
    const o = offset + r * stride;
    const p = r * cells;
    for (let c = 0; c < cells; c++) sad += Math.abs(values[o + c]! - mean - (grey[p + c]! - greyMean));
  }
  return sad / (cells * cells);
}

/**
 * Where the patch's face is on `frame`: the shift of the patch centre and the change of scale
 * (the patch is matched at 1 and 1 +- scaleStep, the scale refined by a parabola through the three
 * errors), or undefined when nothing matches well enough or the best shift is on the search
 * window's border (the face moved farther than the window).
 */
export function estimateMotion(frame: RgbFrame, patch: MotionPatch, options: Pick<MotionOptions, 'maxShift' | 'maxError' | 'scaleStep'>): MotionEstimate | undefined {
  const { cells } = patch;
  const n = cells * cells;
  let patchMean = 0;
  for (let i = 0; i < n; i++) patchMean += patch.grey[i]!;
  patchMean /= n;
  let deviation = 0;
  for (let i = 0; i < n; i++) deviation += Math.abs(patch.grey[i]! - patchMean);
  deviation /= n;
  // A flat patch (a uniform wall, a face in the dark) cannot say where it moved.
  if (!(deviation > 2)) return undefined;

  const reach = Math.max(1, Math.ceil(options.maxShift * cells));
  const scales = options.scaleStep > 0 ? [1 / (1 + options.scaleStep), 1, 1 + options.scaleStep] : [1];
  const matches = scales.map((scale) => matchAtScale(frame, patch, patchMean, scale, reach));
  let best = 0;
  for (let i = 1; i < matches.length; i++) if (matches[i]!.sad < matches[best]!.sad) best = i;
  const match = matches[best]!;
  if (match.onBorder) return undefined;
  const error = match.sad / deviation;
  if (!(error <= options.maxError)) return undefined;
  let scale = scales[best]!;
  if (best === 1) {
    // Between the neighbouring scales, in log scale (the three are evenly spaced there).
    const t = vertex(matches[0]!.sad, match.sad, matches[2]!.sad);
    scale = Math.exp(t * Math.log(1 + options.scaleStep));
  }
  return { dx: match.dx, dy: match.dy, scale, error };
}

/** A point of the anchor frame where the estimate puts it on the new frame. */
export function movePoint(patch: MotionPatch, estimate: MotionEstimate, p: Point): Point {
  const cx = patch.x + patch.size / 2;
  const cy = patch.y + patch.size / 2;
  return [cx + estimate.dx + estimate.scale * (p[0] - cx), cy + estimate.dy + estimate.scale * (p[1] - cy)];
}

/** A box of the anchor frame where the estimate puts it on the new frame. */
export function moveBox(patch: MotionPatch, estimate: MotionEstimate, box: Box): Box {
  const [x, y] = movePoint(patch, estimate, [box.x, box.y]);
  return { x, y, width: box.width * estimate.scale, height: box.height * estimate.scale };
}

/** A face the detector found on `frame`, as the anchor of the motion steps that may follow. */
export function anchorOf(face: { box: Box; region: Box; points: FacePoints; score: number }, frame: RgbFrame, cells: number): FaceAnchor {
  const { box, region, points, score } = face;
  return { patch: takePatch(frame, region, cells), box, region, points, score, steps: 0 };
}
