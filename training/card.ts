import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { alignmentTemplateSchema, type AlignmentTemplate, type Evaluation, type ModelCard } from '../contract/model-card.ts';
import { EMOTIONS } from '../contract/emotions.ts';
import { formatEvaluation } from './evaluation.ts';
import { HEAD_DROPOUT, HEAD_UNITS } from './model/vgg.ts';

export const DEFAULT_TEMPLATE_FILE = path.resolve(import.meta.dirname, 'alignment-template.json');

export async function readAlignmentTemplate(file: string): Promise<AlignmentTemplate> {
  let raw: string;
  try {
    raw = await readFile(file, 'utf8');
  } catch {
    throw new Error(`alignment template ${file} is missing: run \`npm run template\` to measure it on FER2013`);
  }
  return alignmentTemplateSchema.parse(JSON.parse(raw));
}

export interface CardInputs {
  version: string;
  width: number;
  batchNorm: boolean;
  parameters: number;
  flopsPerFace: number;
  normalisation: { scale: number; offset: number };
  alignment: AlignmentTemplate;
  training: ModelCard['training'];
  inference?: ModelCard['inference'];
  evaluation: Evaluation;
}

export function buildCard(inputs: CardInputs): ModelCard {
  return {
    name: 'moodwire-emotion-vgg16',
    version: inputs.version,
    createdAt: new Date().toISOString(),
    labels: [...EMOTIONS],
    input: { height: 48, width: 48, channels: 1, normalisation: inputs.normalisation },
    alignment: inputs.alignment,
    architecture: {
      topology: 'VGG16 (13 conv 3x3 in 5 blocks: 2,2,3,3,3; 2x2 max-pool after each block)' + (inputs.batchNorm ? ' + batch norm' : ''),
      width: inputs.width,
      batchNorm: inputs.batchNorm,
      head: [...HEAD_UNITS.slice(0, 2), `dropout ${HEAD_DROPOUT}`, HEAD_UNITS[2], EMOTIONS.length],
      parameters: inputs.parameters,
      flopsPerFace: inputs.flopsPerFace,
    },
    training: inputs.training,
    ...(inputs.inference ? { inference: inputs.inference } : {}),
    evaluation: inputs.evaluation,
  };
}

export async function writeCard(dir: string, card: ModelCard): Promise<void> {
  await writeFile(path.join(dir, 'card.json'), JSON.stringify(card, null, 2) + '\n');
}

/** The human model card, regenerated from card.json so the two never disagree. */
export function renderModelReadme(card: ModelCard, tradeoff: string): string {
  const e = card.evaluation;
  const t = card.training;
  const pct = (v: number) => `${(100 * v).toFixed(1)}%`;
  const rows = EMOTIONS.map((label) => {
    const s = e.perClass[label]!;
    return `| ${label} | ${pct(s.precision)} | ${pct(s.recall)} | ${pct(s.f1)} | ${s.support} |`;
  });
  return `# Moodwire emotion model (${card.name} ${card.version})

A VGG16-topology convolutional network trained from scratch on FER2013 by \`npm run train\` in this
repository. It reads one aligned 48x48 grey face and returns probabilities for 7 FER2013 labels:
${EMOTIONS.join(', ')}.

## Results on FER2013 ${e.usage} (n = ${e.n}; used for model selection, so slightly optimistic)

- accuracy **${pct(e.accuracy)}**, macro-F1 **${pct(e.macroF1)}**${
    card.inference?.mirrorAverage
      ? `, scoring each face averaged with its mirror image, as the server runs it by default
  (\`EMOTION_MIRROR_AVERAGE=off\` halves the classifier's cost; \`npm run evaluate -- --no-tta\` scores that)`
      : ''
  }
- for scale: human agreement on FER2013 is about 65%; the best published single models about 73% on
  its test split; two popular open emotion models score about 57%.

| class | precision | recall | F1 | support |
|---|---|---|---|---|
${rows.join('\n')}

\`\`\`
${formatEvaluation(e)}
\`\`\`

Reproduce: \`npm run evaluate -- --data ../shared/datasets/fer2013/fer2013-train-public.csv.gz --usage PublicTest\`.

## Architecture and cost

- ${card.architecture.topology}, width multiplier ${card.architecture.width}
  (1.0 = the real VGG16 widths 64-128-256-512-512), dense head ${card.architecture.head.join(' -> ')}, softmax.
- ${card.architecture.parameters.toLocaleString('en')} parameters, ${(card.architecture.flopsPerFace / 1e6).toFixed(1)} MFLOPs per face,
  weights stored as ${t.weightsDtype}.
- Input: 48x48 grey, value = pixel * ${card.input.normalisation.scale.toPrecision(6)} ${card.input.normalisation.offset < 0 ? '-' : '+'} ${Math.abs(card.input.normalisation.offset)}; faces must be aligned
  to the FER2013 template in card.json (eyes at (${card.alignment.leftEye.join(', ')}) and (${card.alignment.rightEye.join(', ')}), mouth at
  (${card.alignment.mouth.join(', ')}) in a ${card.alignment.size}px crop; ${card.alignment.source}).

${tradeoff}

## How it was trained

- Data: ${t.dataset} (sha256 ${t.datasetSha256.slice(0, 16)}...), the Training rows only; PublicTest for
  model selection (best of ${t.epochs} epochs: epoch ${t.bestEpoch}).
- ${t.optimizer}, batch ${t.batchSize}, seed ${t.seed}, ${t.workers} data-parallel worker thread(s) on the
  tfjs \`${t.backend}\` backend, ${(t.wallSeconds / 60).toFixed(0)} minutes wall time up to the end of epoch ${t.bestEpoch} on a 2-core machine
  (the run goes on to its last epoch; the card keeps the best).
- Augmentation: ${t.augmentation ?? 'random horizontal flips, rotations (+-10 degrees), shifts (+-10%), zoom (+-10%)'};
  a class-weighted loss for the rare classes (disgust has 436 training faces of 28,709).

## Intended use

Research, prototyping and aggregate analysis of facial *expressions* in video (for example how often
a speaker smiles over an interview), with people's informed consent. Scores describe the visible
configuration of a face the way FER2013's annotators labelled posed and spontaneous web images.

## What the labels cannot mean

- An expression is not an emotion: people smile when they are not happy and feel angry with a still
  face. These scores are not a reading of anyone's inner state, intent, honesty or personality.
- Do not use it to make decisions about individuals (hiring, grading, policing, insurance, health).
  The EU AI Act prohibits emotion inference in workplaces and educational institutions (since
  February 2025) except for medical or safety reasons; other jurisdictions regulate it too.

## Known limits and biases of FER2013

- 35,887 low-resolution (48x48) grey faces found by web image search and labelled by a single
  annotation pass; label noise is high (human agreement ~65%), and several classes overlap (fear vs
  surprise, sad vs neutral, angry vs disgust).
- Classes are imbalanced (disgust is about 1.5% of the data): its scores are the least reliable.
- The demographics are not documented and skew towards adults and lighter-skinned faces from
  English-language web searches; expect lower accuracy for children, older people, darker skin tones,
  non-Western expression norms, occlusions (masks, glasses, hands), strong head poses and poor light.
- Accuracy on real video is lower than on the curated test split, and depends on the alignment the
  server applies; per-class results above are the honest measure, not the headline accuracy.
`;
}
