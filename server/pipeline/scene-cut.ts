/**
 * Scene-cut signal: a small grey thumbnail of each frame, and the mean absolute difference between
 * the thumbnails of two frames. Camera motion and expressions change a 32x32 thumbnail a little;
 * a cut to another shot changes most of it. Pure TypeScript, a fraction of a millisecond a frame.
 */
import { THUMBNAIL_SIDE } from '../../contract/thumbnails.ts';
import type { RgbFrame } from './types.ts';

export { THUMBNAIL_SIDE, thumbnailDifference } from '../../contract/thumbnails.ts';

/** side x side grey levels (BT.601 luma, 0..255), each the mean of its block of source pixels. */
export function greyThumbnail(frame: RgbFrame, side = THUMBNAIL_SIDE): Uint8Array {
  const { data, width, height } = frame;
  const sums = new Float64Array(side * side);
  const counts = new Uint32Array(side * side);
  // Every 4th pixel in each direction is plenty for a block mean (a 640x480 frame still gives 19 a block).
  const step = Math.max(1, Math.min(4, Math.floor(Math.min(width, height) / (side * 2))));
  for (let y = 0; y < height; y += step) {
    const row = Math.min(side - 1, Math.floor((y * side) / height)) * side;
    for (let x = 0; x < width; x += step) {
      const i = (y * width + x) * 3;
      const cell = row + Math.min(side - 1, Math.floor((x * side) / width));
      sums[cell]! += 0.299 * data[i]! + 0.587 * data[i + 1]! + 0.114 * data[i + 2]!;
      counts[cell]! += 1;
    }
  }
  const out = new Uint8Array(side * side);
  for (let c = 0; c < out.length; c++) out[c] = counts[c]! > 0 ? Math.round(sums[c]! / counts[c]!) : 0;
  return out;
}
