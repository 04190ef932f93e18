import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { EMOTIONS } from './emotions.ts';

/**
 * card.json beside model.json: everything the server needs to feed the model correctly
 * (labels, input, normalisation, alignment template) and what training measured.
 * Training writes it; the server validates it on every (re)load.
 */
const point = z.tuple([z.number(), z.number()]);

export const alignmentTemplateSchema = z.object({
  /** Side of the square crop in pixels (48 for FER2013). */
  size: z.number().int().positive(),
  /** Median landmark positions in crop pixels, measured on FER2013 training faces. */
  leftEye: point,
  rightEye: point,
  mouth: point,
  /** How the template was measured (dataset, detector, sample count). */
  source: z.string(),
  samples: z.number().int().nonnegative(),
});
export type AlignmentTemplate = z.infer<typeof alignmentTemplateSchema>;

const classScoresSchema = z.object({
  precision: z.number(),
  recall: z.number(),
  f1: z.number(),
  support: z.number().int(),
});

export const evaluationSchema = z.object({
  usage: z.string(),
  n: z.number().int(),
  accuracy: z.number(),
  macroF1: z.number(),
  perClass: z.record(z.string(), classScoresSchema),
  confusion: z.array(z.array(z.number().int())),
});
export type Evaluation = z.infer<typeof evaluationSchema>;

export const modelCardSchema = z.object({
  name: z.string(),
  version: z.string(),
  createdAt: z.string(),
  labels: z.array(z.string()).length(EMOTIONS.length),
  input: z.object({
    height: z.number().int(),
    width: z.number().int(),
    channels: z.literal(1),
    /** model input = pixel (0..255) * scale + offset */
    normalisation: z.object({ scale: z.number(), offset: z.number() }),
  }),
  alignment: alignmentTemplateSchema,
  architecture: z.object({
    topology: z.string(),
    width: z.number().positive(),
    batchNorm: z.boolean(),
    head: z.array(z.union([z.number(), z.string()])),
    parameters: z.number().int(),
    flopsPerFace: z.number(),
  }),
  training: z.object({
    dataset: z.string(),
    datasetSha256: z.string(),
    epochs: z.number().int(),
    bestEpoch: z.number().int(),
    batchSize: z.number().int(),
    optimizer: z.string(),
    /** what the random augmentation did; older cards lack it */
    augmentation: z.string().optional(),
    seed: z.number().int(),
    backend: z.string(),
    workers: z.number().int(),
    wallSeconds: z.number(),
    weightsDtype: z.string(),
  }),
  /** How the server must run the model; `evaluation` was measured the same way. Older cards lack it. */
  inference: z.object({ mirrorAverage: z.boolean() }).optional(),
  evaluation: evaluationSchema,
});
export type ModelCard = z.infer<typeof modelCardSchema>;

/** `card`: do what the model card says (how its accuracy was measured); `on`/`off` override it. */
export const MIRROR_AVERAGE_SETTINGS = ['card', 'on', 'off'] as const;
export type MirrorAverageSetting = (typeof MIRROR_AVERAGE_SETTINGS)[number];

export async function readModelCard(modelDir: string): Promise<ModelCard> {
  const file = path.join(modelDir, 'card.json');
  const parsed = modelCardSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
  if (!parsed.success) {
    throw new Error(`invalid model card ${file}: ${z.prettifyError(parsed.error)}`);
  }
  const labels = parsed.data.labels;
  if (labels.some((label, i) => label !== EMOTIONS[i])) {
    throw new Error(`model card ${file} labels ${labels.join(',')} differ from ${EMOTIONS.join(',')}`);
  }
  return parsed.data;
}
