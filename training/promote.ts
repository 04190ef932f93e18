/**
 * Promotes a trained candidate into the folder the server serves (models/emotion/, hot-reloaded),
 * only if it is not worse on PublicTest than the model it replaces (both scored here, on the same
 * rows, each as its card says: mirror-averaged or not), unless forced. The replaced model is kept
 * beside it (`<target>.previous/`) for `--rollback`, which swaps the two back.
 *
 *   npm run promote -- models/candidate            # compare, then promote if not worse
 *   npm run promote -- models/candidate --force    # promote whatever the score
 *   npm run promote -- --rollback                  # serve the previous model again
 */
import { copyFile, mkdir, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Command, InvalidArgumentError, Option } from 'commander';
import { BACKEND_CHOICES, type BackendChoice } from '../contract/backend.ts';
import { readModelCard } from '../contract/model-card.ts';
import { positiveInt } from './cli-args.ts';
import { evaluateModel } from './evaluate.ts';
import { DEFAULT_DATA, isMainModule, REPO_ROOT } from './paths.ts';

export const SERVED_MODEL_DIR = path.join(REPO_ROOT, 'models/emotion');
export const DEFAULT_CANDIDATE_DIR = path.join(REPO_ROOT, 'models/candidate');

/** Files written last are read first by a watching server: the card (its signature) goes last. */
const INSTALL_ORDER = (files: string[]): string[] => [...files.filter((f) => f !== 'model.json' && f !== 'card.json'), ...files.filter((f) => f === 'model.json'), ...files.filter((f) => f === 'card.json')];

export interface PromoteOptions {
  target: string;
  data: string;
  /** score only the first n PublicTest rows (both models, the same rows) */
  limit?: number;
  force: boolean;
  backend: BackendChoice;
  log?: (line: string) => void;
}

export interface PromoteResult {
  promoted: boolean;
  candidate: { version: string; accuracy: number };
  /** undefined when the target held no model */
  current?: { version: string; accuracy: number };
  rows: number;
}

export class PromotionRefused extends Error {}

/** `previous` folder of a served model folder. */
export const previousDir = (target: string): string => `${target.replace(/\/+$/, '')}.previous`;

async function hasModel(dir: string): Promise<boolean> {
  return stat(path.join(dir, 'card.json')).then(
    () => true,
    () => false,
  );
}

/** Copies a model folder's files into `to`, each under a temporary name and renamed into place. */
async function installFiles(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  const files = (await readdir(from, { withFileTypes: true })).filter((e) => e.isFile() && !e.name.endsWith('.tmp')).map((e) => e.name);
  for (const file of INSTALL_ORDER(files)) {
    await copyFile(path.join(from, file), path.join(to, `${file}.tmp`));
    await rename(path.join(to, `${file}.tmp`), path.join(to, file));
  }
  // Files of the old model that the new one does not have (e.g. a differently named weights shard).
  for (const entry of await readdir(to)) if (!files.includes(entry)) await rm(path.join(to, entry), { force: true });
}

/** Keeps a copy of what `target` serves now in `<target>.previous/`. */
async function keepPrevious(target: string): Promise<void> {
  const previous = previousDir(target);
  await rm(previous, { recursive: true, force: true });
  await installFiles(target, previous);
}

export async function promote(candidate: string, options: PromoteOptions): Promise<PromoteResult> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  if (path.resolve(candidate) === path.resolve(options.target)) throw new InvalidArgumentError('the candidate is already the served model folder');
  const candidateCard = await readModelCard(candidate);
  const score = async (dir: string) =>
    evaluateModel({ data: options.data, usage: 'PublicTest', model: dir, backend: options.backend, skipBad: false, ...(options.limit ? { limit: options.limit } : {}) });
  log(`scoring the candidate ${candidateCard.version} on PublicTest...`);
  const candidateScore = await score(candidate);
  const result: PromoteResult = { promoted: false, candidate: { version: candidateCard.version, accuracy: candidateScore.accuracy }, rows: candidateScore.n };
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  if (await hasModel(options.target)) {
    const currentCard = await readModelCard(options.target);
    log(`scoring the served model ${currentCard.version} on the same rows...`);
    const currentScore = await score(options.target);
    result.current = { version: currentCard.version, accuracy: currentScore.accuracy };
    const verdict = `candidate ${candidateCard.version}: ${pct(candidateScore.accuracy)}, served ${currentCard.version}: ${pct(currentScore.accuracy)} on ${candidateScore.n} PublicTest rows`;
    if (candidateScore.accuracy < currentScore.accuracy && !options.force) {
      throw new PromotionRefused(`not promoted: the candidate is worse (${verdict}); add --force to promote it anyway`);
    }
    log(verdict);
    await keepPrevious(options.target);
  }
  await installFiles(candidate, options.target);
  result.promoted = true;
  log(`promoted ${candidateCard.version} into ${path.relative(process.cwd(), options.target) || options.target}; a running server picks it up within MODEL_POLL_MS.` + (result.current ? ` The previous model is in ${previousDir(options.target)} (npm run promote -- --rollback).` : ''));
  return result;
}

/** Serves the previous model again; the one served until now becomes the previous (a second rollback undoes the first). */
export async function rollback(target: string, log: (line: string) => void = (line) => process.stderr.write(`${line}\n`)): Promise<string> {
  const previous = previousDir(target);
  if (!(await hasModel(previous))) throw new PromotionRefused(`no previous model in ${previous} to roll back to`);
  const restored = (await readModelCard(previous)).version;
  const swap = `${target.replace(/\/+$/, '')}.swap`;
  await rm(swap, { recursive: true, force: true });
  await installFiles(target, swap);
  await installFiles(previous, target);
  await rm(previous, { recursive: true, force: true });
  await rename(swap, previous);
  log(`rolled back: serving ${restored} again; the model it replaced is now in ${previous}`);
  return restored;
}

export function promoteCommand(): Command {
  return new Command('promote')
    .description('Serve a trained candidate model if it is not worse on PublicTest than the served one (or roll back)')
    .argument('[candidate]', 'the candidate model folder (what npm run train wrote)', DEFAULT_CANDIDATE_DIR)
    .option('--target <dir>', 'the served model folder', SERVED_MODEL_DIR)
    .option('--data <file>', 'FER2013 csv or csv.gz with PublicTest rows', DEFAULT_DATA)
    .option('--limit <n>', 'score only the first n PublicTest rows (faster, less certain)', positiveInt)
    .option('--force', 'promote even if the candidate scores worse', false)
    .option('--rollback', 'serve the previous model again instead', false)
    .addOption(new Option('--backend <name>', 'tfjs backend for scoring').choices(BACKEND_CHOICES).default('auto'));
}

async function main(): Promise<void> {
  const command = promoteCommand();
  command.parse(process.argv);
  const o = command.opts<{ target: string; data: string; limit?: number; force: boolean; rollback: boolean; backend: BackendChoice }>();
  const target = path.resolve(o.target);
  if (o.rollback) {
    await rollback(target);
    return;
  }
  const candidate = path.resolve(command.processedArgs[0] as string);
  await promote(candidate, { target, data: path.resolve(o.data), force: o.force, backend: o.backend, ...(o.limit ? { limit: o.limit } : {}) });
}

if (isMainModule(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`promote: ${(error as Error).message}\n`);
    process.exitCode = error instanceof PromotionRefused ? 2 : 1;
  });
}
