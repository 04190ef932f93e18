import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';

/**
 * Which ffmpeg/ffprobe to run: an explicit FFMPEG_PATH/FFPROBE_PATH, else the system binaries on
 * PATH (usually newer, with more codecs), else the static ones shipped by @ffmpeg-installer and
 * @ffprobe-installer, so that `npm install` alone is enough.
 */
export interface FfmpegBinaries {
  ffmpegPath: string;
  ffprobePath: string;
  /** Where each one came from, for the startup log. */
  origin: { ffmpeg: 'env' | 'system' | 'npm'; ffprobe: 'env' | 'system' | 'npm' };
}

const require = createRequire(import.meta.url);

function isExecutable(file: string): boolean {
  try {
    fs.accessSync(file, fs.constants.X_OK);
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

/** First executable `name` on PATH, or undefined. */
export function findOnPath(name: string, envPath = process.env.PATH ?? ''): string | undefined {
  for (const dir of envPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function npmBinary(packageName: '@ffmpeg-installer/ffmpeg' | '@ffprobe-installer/ffprobe'): string {
  const shipped = require(packageName) as { path: string };
  return shipped.path;
}

function resolveOne(
  name: 'ffmpeg' | 'ffprobe',
  envValue: string | undefined,
  preferNpm: boolean,
  envPath: string | undefined,
): { path: string; origin: 'env' | 'system' | 'npm' } {
  if (envValue) return { path: envValue, origin: 'env' };
  const system = preferNpm ? undefined : findOnPath(name, envPath ?? '');
  if (system) return { path: system, origin: 'system' };
  const npmPath = npmBinary(name === 'ffmpeg' ? '@ffmpeg-installer/ffmpeg' : '@ffprobe-installer/ffprobe');
  return { path: npmPath, origin: 'npm' };
}

let cached: FfmpegBinaries | undefined;

/** Resolve once per process; `preferNpm` skips PATH (used to test the npm fallback). */
export function resolveFfmpegBinaries(options: { preferNpm?: boolean; env?: NodeJS.ProcessEnv } = {}): FfmpegBinaries {
  const env = options.env ?? process.env;
  const useCache = options.preferNpm === undefined && options.env === undefined;
  if (useCache && cached) return cached;
  const ffmpeg = resolveOne('ffmpeg', env.FFMPEG_PATH, options.preferNpm ?? false, env.PATH);
  const ffprobe = resolveOne('ffprobe', env.FFPROBE_PATH, options.preferNpm ?? false, env.PATH);
  const resolved: FfmpegBinaries = {
    ffmpegPath: ffmpeg.path,
    ffprobePath: ffprobe.path,
    origin: { ffmpeg: ffmpeg.origin, ffprobe: ffprobe.origin },
  };
  if (useCache) cached = resolved;
  return resolved;
}
