import sharp from 'sharp';
import { AppError } from '../../contract/errors.ts';
import type { RgbFrame } from './types.ts';

/** Size limits checked before any pixel is decoded. */
export interface DecodeLimits {
  maxImageBytes: number;
  maxImagePixels: number;
}

const ACCEPTED_FORMATS = new Set(['jpeg', 'png', 'webp']);

/**
 * Encoded JPEG/PNG/WebP bytes -> interleaved RGB. The header is read first (sharp metadata), so
 * an oversized or foreign image is refused before its pixels are decoded. EXIF orientation is
 * applied, so boxes are in the pixels a viewer sees.
 */
export async function decodeImage(image: Uint8Array, limits: DecodeLimits): Promise<RgbFrame> {
  if (image.byteLength === 0) throw new AppError('undecodable_image', 'the image is empty');
  if (image.byteLength > limits.maxImageBytes) {
    throw new AppError('image_too_large', `the image has ${image.byteLength} bytes, the limit is ${limits.maxImageBytes}`);
  }
  let metadata: sharp.Metadata;
  try {
    // Only the header is read here, so sharp's own pixel limit (which would refuse a header that
    // claims 100000x100000 as if it were corrupt) is off: the size check below answers it.
    metadata = await sharp(image, { limitInputPixels: false }).metadata();
  } catch {
    throw new AppError('undecodable_image', 'the bytes are not a JPEG, PNG or WebP image');
  }
  if (!metadata.format || !ACCEPTED_FORMATS.has(metadata.format)) {
    throw new AppError('undecodable_image', `unsupported image format ${metadata.format ?? 'unknown'}: send JPEG, PNG or WebP`);
  }
  const width = metadata.width ?? 0;
  const height = metadata.height ?? 0;
  if (width * height > limits.maxImagePixels) {
    throw new AppError('image_too_large', `the image has ${width}x${height} pixels, the limit is ${limits.maxImagePixels} pixels`);
  }
  try {
    // Each step only where the header asks for it: on a 640x480 webcam JPEG the three together cost ~25% of the decode.
    let pipeline = sharp(image, { limitInputPixels: limits.maxImagePixels, pages: 1 });
    if ((metadata.orientation ?? 1) > 1) pipeline = pipeline.rotate();
    if (metadata.hasAlpha) pipeline = pipeline.removeAlpha();
    if (metadata.space !== 'srgb' || metadata.channels !== 3) pipeline = pipeline.removeAlpha().toColourspace('srgb');
    const { data, info } = await pipeline.raw().toBuffer({ resolveWithObject: true });
    if (info.channels !== 3) throw new Error(`expected 3 channels, got ${info.channels}`);
    return { data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength), width: info.width, height: info.height };
  } catch (error) {
    // Should libvips still refuse the pixels by its limit (the same limit as the header check
    // above, so only where the decoder finds more than the header said), the same answer.
    if (error instanceof Error && /pixel limit/i.test(error.message)) {
      throw new AppError('image_too_large', `the image has more pixels than the limit of ${limits.maxImagePixels}`);
    }
    throw new AppError('undecodable_image', 'the image could not be decoded (truncated or corrupt)');
  }
}
