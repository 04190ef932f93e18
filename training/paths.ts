import path from 'node:path';
import { pathToFileURL } from 'node:url';

export const REPO_ROOT = path.resolve(import.meta.dirname, '..');
/** FER2013 lives beside the repo, never in it. */
export const DEFAULT_DATA = path.resolve(REPO_ROOT, '../shared/datasets/fer2013/fer2013-train-public.csv.gz');

/** True when this module is the script node was started with (not imported by a test). */
export function isMainModule(moduleUrl: string): boolean {
  const script = process.argv[1];
  return script !== undefined && pathToFileURL(path.resolve(script)).href === moduleUrl;
}
