import { AppError } from '../../contract/errors.ts';
import type { FacePoints } from '../../contract/face-points.ts';
import type { Point } from '../../contract/geometry.ts';
import type { AlignmentTemplate } from '../../contract/model-card.ts';
import type { RgbFrame } from './types.ts';

/**
 * Face alignment to FER2013 framing: a similarity transform (rotation, uniform scale,
 * translation) that puts the eye centres and the mouth centre where FER2013 training faces have
 * them (the template measured by training/template.ts), then a size x size grey crop, area-averaged
 * (see sampleGrey). Pure TypeScript: it runs once per face per frame and needs no tensors.
 *
 * Coordinates are continuous image coordinates as face-api reports them: pixel (i, j) covers
 * [i, i+1) x [j, j+1), so its centre is (i + 0.5, j + 0.5). The template uses the same convention
 * in crop pixels.
 */

/** x' = a*x - b*y + tx, y' = b*x + a*y + ty (a = s*cos(theta), b = s*sin(theta)). */
export interface Similarity {
  a: number;
  b: number;
  tx: number;
  ty: number;
}

/** Relative least-squares weights of the three points; the eyes fix roll best, the mouth fixes scale on turned heads. */
export interface AlignWeights {
  eyes: number;
  mouth: number;
}

/**
 * Eyes count twice: re-aligning 200 FER2013 PublicTest faces to their own framing, mean abs pixel
 * error was 45.8 with eyes 2 : mouth 1, 46.1 with 1 : 1 and 46.5 with the eyes alone (small
 * differences; the mouth still steadies the scale of turned heads).
 */
export const DEFAULT_ALIGN_WEIGHTS: AlignWeights = { eyes: 2, mouth: 1 };

/**
 * Weighted least-squares similarity mapping `from[i]` onto `to[i]` (closed form, no reflection).
 * Throws when the `from` points coincide (no scale or rotation can be recovered).
 */
export function fitSimilarity(from: readonly Point[], to: readonly Point[], weights?: readonly number[]): Similarity {
  if (from.length !== to.length || from.length < 2) throw new AppError('bad_request', 'need at least 2 point pairs');
  const w = (i: number): number => weights?.[i] ?? 1;
  let sw = 0;
  let fx = 0;
  let fy = 0;
  let tx = 0;
  let ty = 0;
  for (let i = 0; i < from.length; i++) {
    const wi = w(i);
    sw += wi;
    fx += wi * from[i]![0];
    fy += wi * from[i]![1];
    tx += wi * to[i]![0];
    ty += wi * to[i]![1];
  }
  fx /= sw;
  fy /= sw;
  tx /= sw;
  ty /= sw;
  let norm = 0;
  let dot = 0;
  let cross = 0;
  for (let i = 0; i < from.length; i++) {
    const wi = w(i);
    const ux = from[i]![0] - fx;
    const uy = from[i]![1] - fy;
    const vx = to[i]![0] - tx;
    const vy = to[i]![1] - ty;
    norm += wi * (ux * ux + uy * uy);
    dot += wi * (ux * vx + uy * vy);
    cross += wi * (ux * vy - uy * vx);
  }
  if (!(norm > 1e-9)) throw new AppError('bad_request', 'landmarks are degenerate (points coincide)');
  const a = dot / norm;
  const b = cross / norm;
  return { a, b, tx: tx - (a * fx - b * fy), ty: ty - (b * fx + a * fy) };
}

export function applySimilarity(t: Similarity, p: Point): Point {
  return [t.a * p[0] - t.b * p[1] + t.tx, t.b * p[0] + t.a * p[1] + t.ty];
}

/** outer after inner: p -> outer(inner(p)). */
export function composeSimilarity(outer: Similarity, inner: Similarity): Similarity {
  return {
    a: outer.a * inner.a - outer.b * inner.b,
    b: outer.b * inner.a + outer.a * inner.b,
    tx: outer.a * inner.tx - outer.b * inner.ty + outer.tx,
    ty: outer.b * inner.tx + outer.a * inner.ty + outer.ty,
  };
}

/** Rotation by `radians` about `centre` (positive = clockwise on screen). */
export function rotationAbout(centre: Point, radians: number): Similarity {
  const a = Math.cos(radians);
  const b = Math.sin(radians);
  return { a, b, tx: centre[0] - (a * centre[0] - b * centre[1]), ty: centre[1] - (b * centre[0] + a * centre[1]) };
}

export function similarityScale(t: Similarity): number {
  return Math.hypot(t.a, t.b);
}

/** Rotation in radians (positive = clockwise on screen, since y points down). */
export function similarityAngle(t: Similarity): number {
  return Math.atan2(t.b, t.a);
}

/** The transform from template (crop) coordinates to frame coordinates for these face points. */
export function templateToFrame(points: FacePoints, template: AlignmentTemplate, weights = DEFAULT_ALIGN_WEIGHTS): Similarity {
  return fitSimilarity(
    [template.leftEye, template.rightEye, template.mouth],
    [points.leftEye, points.rightEye, points.mouth],
    [weights.eyes, weights.eyes, weights.mouth],
  );
}

/** Up to this many table entries (8 MB) are kept between calls; a larger table is allocated for its call alone. */
const KEPT_INTEGRAL_ENTRIES = 1 << 20;
let keptIntegral = new Float64Array(0);

/**
 * A scratch table of at least `entries` (contents undefined). Reused across calls: a large face's
 * table is about a megabyte, and allocating (and zeroing) one per face per frame costs time and
 * garbage collections. Safe because sampleGrey is synchronous and each worker has its own module.
 */
function integralBuffer(entries: number): Float64Array {
  if (entries > KEPT_INTEGRAL_ENTRIES) return new Float64Array(entries);
  if (keptIntegral.length < entries) keptIntegral = new Float64Array(Math.min(KEPT_INTEGRAL_ENTRIES, Math.max(entries, 2 * keptIntegral.length)));
  return keptIntegral;
}

/**
 * size*size grey values (0..255, BT.601 luma, row-major) sampled from `frame` through `toFrame`
 * (crop -> frame coordinates), replicating edge pixels outside the frame.
 *
 * Each crop pixel is the mean luma over an axis-aligned square of side max(scale, 1) source pixels
 * centred where the crop pixel's centre lands, so a large face shrunk to 48x48 is area-averaged like
 * FER2013's own downscaled faces, not aliased. Source pixels count as constant cells and the square's
 * fractional edges are integrated exactly, through a summed-area table: each crop pixel costs the
 * same whatever the face size, and each source pixel under the crop is read once (which any area
 * average must do). A rotated face's true footprint is a rotated square; the axis-aligned square of
 * the same side is close enough for the small roll angles faces have. At scale <= 1 (a small face
 * enlarged) the unit square's mean is exactly the bilinear interpolation between pixel centres: a
 * single bilinear sample, as before.
 */
export function sampleGrey(frame: RgbFrame, toFrame: Similarity, size: number): Float32Array {
  const { data, width, height } = frame;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || data.length < width * height * 3) {
    throw new AppError('bad_request', `frame data holds ${data.length} bytes, expected ${width * height * 3}`);
  }
  if (!Number.isInteger(size) || size < 1) throw new AppError('bad_request', `crop size must be a positive integer, got ${size}`);
  const { a, b, tx, ty } = toFrame;
  if (![a, b, tx, ty].every(Number.isFinite)) throw new AppError('bad_request', 'alignment transform is not finite');

  // The frame area the crop reads from: its corners' bounding box in pixel-index space (centres on
  // integers), widened by a pixel and clamped to the frame. Every square lies inside it, or outside
  // the frame where the table below extends by edge replication.
  const corners = [
    [0, 0],
    [size, 0],
    [0, size],
    [size, size],
  ].map(([u, v]) => [a * u! - b * v! + tx - 0.5, b * u! + a * v! + ty - 0.5] as const);
  const clamp = (value: number, max: number): number => (value < 0 ? 0 : value > max ? max : value);
  const rx0 = clamp(Math.floor(Math.min(...corners.map((c) => c[0]))), width - 1);
  const rx1 = clamp(Math.ceil(Math.max(...corners.map((c) => c[0]))) + 1, width - 1);
  const ry0 = clamp(Math.floor(Math.min(...corners.map((c) => c[1]))), height - 1);
  const ry1 = clamp(Math.ceil(Math.max(...corners.map((c) => c[1]))) + 1, height - 1);
  const cellsWide = rx1 - rx0 + 1;
  const cellsHigh = ry1 - ry0 + 1;

  // Summed-area table of 1000 x luma over that area, the luma computed in the same pass (no separate
  // luma plane): integral[y * stride + x] sums cells [0, x) x [0, y). The integer weights keep every
  // entry an exact integer (255000 a pixel at most: exact below 2^53, i.e. ~35 gigapixels), so large
  // areas accumulate no rounding and subtracting big sums stays precise.
  const stride = cellsWide + 1;
  const integral = integralBuffer(stride * (cellsHigh + 1));
  integral.fill(0, 0, stride);
  for (let y = 0; y < cellsHigh; y++) {
    const above = y * stride;
    const row = above + stride;
    integral[row] = 0;
    let source = ((ry0 + y) * width + rx0) * 3;
    let rowSum = 0;
    for (let x = 1; x <= cellsWide; x++, source += 3) {
      rowSum += 299 * data[source]! + 587 * data[source + 1]! + 114 * data[source + 2]!;
      integral[row + x] = integral[above + x]! + rowSum;
    }
  }
  // The integral at a fractional point (area coordinates: x = 0 is the left edge of cell rx0) is
  // bilinear within each cell when cells are constant, so interpolating the table is exact. Past the
  // table's last (or before its first) cell it extrapolates that cell's bilinear piece, which is
  // the integral of the edge cells replicated outwards: edge replication outside the frame.
  const integralAt = (x: number, y: number): number => {
    const cellX = x < 0 ? 0 : x >= cellsWide ? cellsWide - 1 : Math.floor(x);
    const cellY = y < 0 ? 0 : y >= cellsHigh ? cellsHigh - 1 : Math.floor(y);
    const fx = x - cellX;
    const fy = y - cellY;
    const i = cellY * stride + cellX;
    const top = integral[i]! + fx * (integral[i + 1]! - integral[i]!);
    const bottom = integral[i + stride]! + fx * (integral[i + stride + 1]! - integral[i + stride]!);
    return top + fy * (bottom - top);
  };

  const side = Math.max(1, similarityScale(toFrame));
  const half = side / 2;
  const toMeanLuma = 1 / (1000 * side * side);
  const out = new Float32Array(size * size);
  for (let v = 0; v < size; v++) {
    for (let u = 0; u < size; u++) {
      const cx = a * (u + 0.5) - b * (v + 0.5) + tx - rx0;
      const cy = b * (u + 0.5) + a * (v + 0.5) + ty - ry0;
      const x0 = cx - half;
      const x1 = cx + half;
      const y0 = cy - half;
      const y1 = cy + half;
      const mean = (integralAt(x1, y1) - integralAt(x0, y1) - integralAt(x1, y0) + integralAt(x0, y0)) * toMeanLuma;
      // interpolation rounding can leave a hair outside 0..255 on flat black or white
      out[v * size + u] = mean < 0 ? 0 : mean > 255 ? 255 : mean;
    }
  }
  return out;
}

/**
 * The face as the emotion model expects it: template.size^2 grey values (0..255, row-major) with
 * eyes and mouth where FER2013 faces have them.
 */
export function alignFace(frame: RgbFrame, points: FacePoints, template: AlignmentTemplate): Float32Array {
  return sampleGrey(frame, templateToFrame(points, template), template.size);
}
