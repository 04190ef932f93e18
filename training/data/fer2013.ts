/** FER2013 in the original Kaggle layout: `emotion,pixels,Usage`, 48x48 grey, labels 0..6. */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { createGunzip } from 'node:zlib';

/** Side of a FER2013 face in pixels. */
export const FER_SIDE = 48;
export const FER_PIXELS = FER_SIDE * FER_SIDE;
export const FER_USAGES = ['Training', 'PublicTest', 'PrivateTest'] as const;
export type FerUsage = (typeof FER_USAGES)[number];

export class FerFormatError extends Error {
  constructor(
    readonly line: number,
    reason: string,
  ) {
    super(`line ${line}: ${reason}`);
    this.name = 'FerFormatError';
  }
}

/** Images as one contiguous byte array (optionally shared with worker threads). */
export interface FerSplit {
  usage: FerUsage;
  count: number;
  images: Uint8Array; // count * 2304
  labels: Uint8Array; // count
}

export interface FerReadResult {
  splits: Partial<Record<FerUsage, FerSplit>>;
  sha256: string;
  rows: number;
  skipped: { line: number; reason: string }[];
}

export interface FerReadOptions {
  usages?: readonly FerUsage[];
  /** count and skip malformed rows instead of failing on the first one */
  skipBad?: boolean;
  /** back the images with SharedArrayBuffers (for worker threads) */
  shared?: boolean;
}

/** Parses one data row; throws a reason string on anything malformed. */
export function parseFerRow(text: string): { label: number; usage: FerUsage; pixels: Uint8Array } {
  const first = text.indexOf(',');
  const last = text.lastIndexOf(',');
  if (first < 0 || last === first) throw new Error('expected 3 comma-separated fields');
  const labelText = text.slice(0, first).trim();
  if (!/^[0-6]$/.test(labelText)) throw new Error(`emotion must be an integer 0..6, got "${labelText.slice(0, 20)}"`);
  const usage = text.slice(last + 1).trim();
  if (!(FER_USAGES as readonly string[]).includes(usage)) throw new Error(`unknown Usage "${usage.slice(0, 20)}"`);
  const pixels = new Uint8Array(FER_PIXELS);
  let count = 0;
  let value = -1;
  for (let i = first + 1; i <= last; i++) {
    const c = i === last ? 32 : text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      value = (value < 0 ? 0 : value * 10) + (c - 48);
      if (value > 255) throw new Error(`pixel ${count + 1} is over 255`);
    } else if (c === 32 || c === 34) {
      // space separates values; quotes may wrap the pixel field
      if (value >= 0) {
        if (count >= FER_PIXELS) throw new Error(`more than ${FER_PIXELS} pixels`);
        pixels[count++] = value;
        value = -1;
      }
    } else {
      throw new Error(`unexpected character "${String.fromCharCode(c)}" in pixels`);
    }
  }
  if (count !== FER_PIXELS) throw new Error(`expected ${FER_PIXELS} pixels, got ${count}`);
  return { label: Number(labelText), usage: usage as FerUsage, pixels };
}

/** Streams a FER2013 .csv or .csv.gz, hashing the file bytes as they are read. */
export async function readFer2013(file: string, options: FerReadOptions = {}): Promise<FerReadResult> {
  const wanted = new Set<FerUsage>(options.usages ?? FER_USAGES);
  const hash = createHash('sha256');
  const raw = createReadStream(file);
  const tap = new PassThrough();
  raw.on('data', (chunk) => hash.update(chunk));
  raw.on('error', (error) => tap.destroy(error));
  raw.pipe(tap);
  const text = file.endsWith('.gz') ? tap.pipe(createGunzip()) : tap;
  const lines = createInterface({ input: text, crlfDelay: Infinity });

  const collected: Record<FerUsage, { labels: number[]; images: Uint8Array[] }> = {
    Training: { labels: [], images: [] },
    PublicTest: { labels: [], images: [] },
    PrivateTest: { labels: [], images: [] },
  };
  const skipped: { line: number; reason: string }[] = [];
  let lineNumber = 0;
  let rows = 0;
  for await (const line of lines) {
    lineNumber++;
    if (lineNumber === 1) {
      const header = line.replace(/^\uFEFF/, '').trim();
      if (header !== 'emotion,pixels,Usage') {
        throw new FerFormatError(1, `expected header "emotion,pixels,Usage", got "${header.slice(0, 60)}"`);
      }
      continue;
    }
    if (line.trim() === '') continue;
    let row: ReturnType<typeof parseFerRow>;
    try {
      row = parseFerRow(line);
    } catch (error) {
      const reason = (error as Error).message;
      if (!options.skipBad) throw new FerFormatError(lineNumber, reason);
      skipped.push({ line: lineNumber, reason });
      continue;
    }
    rows++;
    if (!wanted.has(row.usage)) continue;
    collected[row.usage].labels.push(row.label);
    collected[row.usage].images.push(row.pixels);
  }
  if (lineNumber === 0) throw new FerFormatError(1, 'empty file');

  const splits: FerReadResult['splits'] = {};
  for (const usage of FER_USAGES) {
    const { labels, images } = collected[usage];
    if (labels.length === 0) continue;
    splits[usage] = packSplit(usage, labels, images, options.shared ?? false);
  }
  return { splits, sha256: hash.digest('hex'), rows, skipped };
}

function packSplit(usage: FerUsage, labels: number[], images: Uint8Array[], shared: boolean): FerSplit {
  const count = labels.length;
  const imageBytes = shared ? new Uint8Array(new SharedArrayBuffer(count * FER_PIXELS)) : new Uint8Array(count * FER_PIXELS);
  images.forEach((image, i) => imageBytes.set(image, i * FER_PIXELS));
  const labelBytes = shared ? new Uint8Array(new SharedArrayBuffer(count)) : new Uint8Array(count);
  labelBytes.set(labels);
  return { usage, count, images: imageBytes, labels: labelBytes };
}

export function classCounts(labels: Uint8Array, classes = 7): number[] {
  const counts = new Array<number>(classes).fill(0);
  for (const label of labels) counts[label]!++;
  return counts;
}
