import { FER_SIDE } from './data/fer2013.ts';

/** Small deterministic PRNG (mulberry32) so a run is reproducible from `--seed`. */
export function createRng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface AugmentOptions {
  flip: boolean;
  /** max rotation in degrees (uniform in +-) */
  rotateDeg: number;
  /** max shift as a fraction of the side */
  shift: number;
  /** max relative zoom (uniform scale in 1 +- zoom) */
  zoom: number;
}

// Mild on purpose: the ~2-hour CPU budget is ~18 epochs' worth of 48x48 compute, where a small net under-fits long before it
// over-fits, and stronger augmentation (10 degrees, 10%) measurably slowed learning in that budget.
export const DEFAULT_AUGMENT: AugmentOptions = { flip: true, rotateDeg: 5, shift: 0.05, zoom: 0.05 };

/**
 * One random flip/rotate/shift/zoom of a 48x48 grey face into `out` (float, 0..255 scale), by inverse
 * mapping with bilinear sampling and edge replication, as Keras' ImageDataGenerator does.
 * `outSide` < 48 renders the same (augmented) face downscaled to outSide x outSide, for the cheaper
 * low-resolution epochs; the random draws do not depend on it.
 */
export function augmentInto(src: Uint8Array, srcOffset: number, out: Float32Array, outOffset: number, rng: () => number, o: AugmentOptions, outSide: number = FER_SIDE): void {
  const n = FER_SIDE;
  const c = (n - 1) / 2;
  const outCentre = (outSide - 1) / 2;
  const angle = ((rng() * 2 - 1) * o.rotateDeg * Math.PI) / 180;
  const scale = 1 + (rng() * 2 - 1) * o.zoom;
  const tx = (rng() * 2 - 1) * o.shift * outSide;
  const ty = (rng() * 2 - 1) * o.shift * outSide;
  const flip = o.flip && rng() < 0.5 ? -1 : 1;
  // inverse transform: output pixel -> source pixel (one output pixel spans n/outSide source pixels)
  const cos = (Math.cos(angle) / scale) * (n / outSide);
  const sin = (Math.sin(angle) / scale) * (n / outSide);
  for (let y = 0; y < outSide; y++) {
    for (let x = 0; x < outSide; x++) {
      const dx = (x - outCentre - tx) * flip;
      const dy = y - outCentre - ty;
      let sx = cos * dx + sin * dy + c;
      let sy = -sin * dx + cos * dy + c;
      sx = sx < 0 ? 0 : sx > n - 1 ? n - 1 : sx;
      sy = sy < 0 ? 0 : sy > n - 1 ? n - 1 : sy;
      const x0 = Math.floor(sx);
      const y0 = Math.floor(sy);
      const x1 = x0 < n - 1 ? x0 + 1 : x0;
      const y1 = y0 < n - 1 ? y0 + 1 : y0;
      const fx = sx - x0;
      const fy = sy - y0;
      const row0 = srcOffset + y0 * n;
      const row1 = srcOffset + y1 * n;
      const top = src[row0 + x0]! * (1 - fx) + src[row0 + x1]! * fx;
      const bottom = src[row1 + x0]! * (1 - fx) + src[row1 + x1]! * fx;
      out[outOffset + y * outSide + x] = top * (1 - fy) + bottom * fy;
    }
  }
}

/** Fisher-Yates shuffle of 0..count-1. */
export function shuffledIndices(count: number, rng: () => number): Int32Array {
  const idx = new Int32Array(count);
  for (let i = 0; i < count; i++) idx[i] = i;
  for (let i = count - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const t = idx[i]!;
    idx[i] = idx[j]!;
    idx[j] = t;
  }
  return idx;
}
