/**
 * A small JPEG of a face for a video job's track (only when the upload asked for it: a stored
 * picture of a person). The crop is copied out of the frame at once (the decoder reuses frame
 * buffers), then encoded by sharp off the main thread.
 */
import sharp from 'sharp';
import type { Box } from '../../contract/geometry.ts';
import type { RgbFrame } from '../pipeline/types.ts';

export const THUMBNAIL_SIDE_PX = 96;
/** Room around the detector's box: hair and chin make a face recognisable to people. */
const MARGIN = 0.25;

/** The box (frame pixels) widened by the margin, squared, clipped, copied into its own RGB buffer. */
export function cropFace(frame: RgbFrame, box: Box): RgbFrame | undefined {
  const side = Math.max(box.width, box.height) * (1 + 2 * MARGIN);
  const cx = box.x + box.width / 2;
  const cy = box.y + box.height / 2;
  const left = Math.max(0, Math.round(cx - side / 2));
  const top = Math.max(0, Math.round(cy - side / 2));
  const right = Math.min(frame.width, Math.round(cx + side / 2));
  const bottom = Math.min(frame.height, Math.round(cy + side / 2));
  const width = right - left;
  const height = bottom - top;
  if (width < 2 || height < 2) return undefined;
  const data = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    const from = ((top + y) * frame.width + left) * 3;
    data.set(frame.data.subarray(from, from + width * 3), y * width * 3);
  }
  return { data, width, height };
}

export function encodeThumbnail(crop: RgbFrame): Promise<Buffer> {
  return sharp(crop.data, { raw: { width: crop.width, height: crop.height, channels: 3 } })
    .resize(THUMBNAIL_SIDE_PX, THUMBNAIL_SIDE_PX, { fit: 'cover' })
    .jpeg({ quality: 80 })
    .toBuffer();
}
