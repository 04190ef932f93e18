/**
 * Which ffmpeg/ffprobe to run: FFMPEG_PATH/FFPROBE_PATH when set (a command name is looked up on
 * PATH), else the system binaries on PATH (usually newer, with more codecs), else the static ones
 * shipped by @ffmpeg-installer and @ffprobe-installer, so that `npm install` alone is enough. The
 * settings come from the `ffmpeg` slice of the Config; nothing here reads the environment.
 */
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
import type { FfmpegConfig } from '../config.ts';

export type BinaryOrigin = 'env' | 'system' | 'npm';

export interface FfmpegBinaries {
  ffmpegPath: string;
  ffprobePath: string;
  /** Where each one came from, for the startup log: the setting, PATH, or the npm package. */
  origin: { ffmpeg: BinaryOrigin; ffprobe: BinaryOrigin };
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

/** First executable `name` in the directories of `searchPath` (a PATH string), or undefined. */
export function findOnPath(name: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (!dir) continue;
    const candidate = path.join(dir, name);
    if (isExecutable(candidate)) return candidate;
  }
  return undefined;
}

function npmBinary(name: 'ffmpeg' | 'ffprobe'): string {
  const shipped = require(name === 'ffmpeg' ? '@ffmpeg-installer/ffmpeg' : '@ffprobe-installer/ffprobe') as { path: string };
  return shipped.path;
}

function resolveOne(name: 'ffmpeg' | 'ffprobe', setting: string | undefined, searchPath: string, preferNpm: boolean): { path: string; origin: BinaryOrigin } {
  if (setting) {
    // A bare command name is looked up like the shell would; spawn gets it unchanged if not found.
    const file = path.isAbsolute(setting) ? setting : (findOnPath(setting, searchPath) ?? setting);
    return { path: file, origin: 'env' };
  }
  const system = preferNpm ? undefined : findOnPath(name, searchPath);
  if (system) return { path: system, origin: 'system' };
  return { path: npmBinary(name), origin: 'npm' };
}

/** Resolves both binaries; `preferNpm` skips the PATH lookup (used to test the npm fallback). */
export function resolveFfmpegBinaries(settings: FfmpegConfig, options: { preferNpm?: boolean } = {}): FfmpegBinaries {
  const preferNpm = options.preferNpm ?? false;
  const ffmpeg = resolveOne('ffmpeg', settings.ffmpegPath, settings.searchPath, preferNpm);
  const ffprobe = resolveOne('ffprobe', settings.ffprobePath, settings.searchPath, preferNpm);
  return {
    ffmpegPath: ffmpeg.path,
    ffprobePath: ffprobe.path,
    origin: { ffmpeg: ffmpeg.origin, ffprobe: ffprobe.origin },
  };
}
