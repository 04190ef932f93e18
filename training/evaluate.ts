import path from 'node:path';
import { Command, Option } from 'commander';
import { BACKEND_CHOICES, initBackend, type BackendChoice } from '../contract/backend.ts';
import { readModelCard, type Evaluation } from '../contract/model-card.ts';
import { loadLayersModelFromDir } from '../contract/model-io.ts';
import { FER_USAGES, readFer2013, type FerUsage } from './data/fer2013.ts';
import { argmaxRows, evaluatePredictions, formatEvaluation } from './evaluation.ts';
import { predictFaces } from './predict.ts';
import { DEFAULT_DATA, isMainModule, REPO_ROOT } from './paths.ts';

export interface EvaluateOptions {
  data: string;
  usage: FerUsage;
  model: string;
  /** average each face with its mirror image; default: what the model card says */
  tta?: boolean;
  limit?: number;
  backend: BackendChoice;
  skipBad: boolean;
}

/** Scores a trained model directory on one usage split of a FER2013 csv. */
export async function evaluateModel(options: EvaluateOptions): Promise<Evaluation> {
  await initBackend(options.backend);
  const card = await readModelCard(options.model);
  const model = await loadLayersModelFromDir(options.model);
  try {
    const data = await readFer2013(options.data, { usages: [options.usage], skipBad: options.skipBad });
    const split = data.splits[options.usage];
    if (!split) throw new Error(`${options.data} has no ${options.usage} rows`);
    const n = Math.min(split.count, options.limit ?? split.count);
    const probs = predictFaces(model, split.images, 0, n, card.input.normalisation, options.tta ?? card.inference?.mirrorAverage ?? false);
    return evaluatePredictions(options.usage, split.labels.subarray(0, n), argmaxRows(probs));
  } finally {
    model.dispose();
  }
}

async function main(): Promise<void> {
  const command = new Command('evaluate')
    .description('Accuracy, macro-F1, per-class scores and the confusion matrix of a trained model on FER2013')
    .option('--data <file>', 'FER2013 csv or csv.gz', DEFAULT_DATA)
    .addOption(new Option('--usage <usage>', 'which rows to score').choices(FER_USAGES).default('PublicTest'))
    .option('--model <dir>', 'model directory (model.json, weights, card.json)', path.join(REPO_ROOT, 'models/emotion'))
    .option('--tta', 'average each face with its mirror image (default: as the model card says)')
    .option('--no-tta', 'score single faces even if the model card asks for mirror averaging')
    .option('--limit <n>', 'score only the first n rows', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n <= 0) throw new Error('--limit must be a positive integer');
      return n;
    })
    .addOption(new Option('--backend <name>', 'tfjs backend').choices(BACKEND_CHOICES).default('auto'))
    .option('--skip-bad', 'skip malformed csv rows', false)
    .option('--json', 'print exactly one JSON object on one line', false);
  command.parse(process.argv);
  const o = command.opts<EvaluateOptions & { json: boolean }>();
  const evaluation = await evaluateModel({ ...o, data: path.resolve(o.data), model: path.resolve(o.model) });
  if (o.json) {
    const { usage, n, accuracy, macroF1, perClass, confusion } = evaluation;
    process.stdout.write(JSON.stringify({ usage, n, accuracy, macroF1, perClass, confusion }) + '\n');
  } else {
    process.stdout.write(formatEvaluation(evaluation) + '\n');
  }
}

if (isMainModule(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`evaluate: ${(error as Error).message}\n`);
    process.exitCode = 1;
  });
}
