/**
 * The emotion classifier as loaded in one worker: the tfjs model plus the card that says how to
 * feed it (input size, normalisation, alignment template). Loaded, checked and warmed up before
 * it replaces an older one, so a broken new model never takes over.
 */
import * as tf from '@tensorflow/tfjs';
import { classifyCrops } from '../pipeline/classify.ts';
import type { AlignmentTemplate, MirrorAverageSetting, ModelCard } from '../../contract/model-card.ts';
import { readModelCard } from '../../contract/model-card.ts';
import { directoryIO } from '../../contract/model-io.ts';
import { foldBatchNorm } from './fold-batch-norm.ts';

/** The saved model with its batch norms folded into the convolutions (same outputs, fewer kernels). */
async function loadForInference(dir: string): Promise<tf.LayersModel> {
  const { artifacts } = await foldBatchNorm(await directoryIO(dir).load!());
  return tf.loadLayersModel(tf.io.fromMemory(artifacts));
}

function mirrorAverageOf(setting: MirrorAverageSetting, card: ModelCard): boolean {
  return setting === 'card' ? (card.inference?.mirrorAverage ?? false) : setting === 'on';
}

export class EmotionModel {
  readonly card: ModelCard;
  /** average each crop with its mirror image: the card's choice unless the server overrides it */
  readonly mirrorAverage: boolean;
  readonly #model: tf.LayersModel;

  private constructor(model: tf.LayersModel, card: ModelCard, mirrorAverage: boolean) {
    this.#model = model;
    this.card = card;
    this.mirrorAverage = mirrorAverage;
  }

  static async load(dir: string, options: { mirrorAverage?: MirrorAverageSetting } = {}): Promise<EmotionModel> {
    const card = await readModelCard(dir);
    const model = await loadForInference(dir);
    const instance = new EmotionModel(model, card, mirrorAverageOf(options.mirrorAverage ?? 'card', card));
    try {
      instance.#checkShapes();
      // Warm-up: the first predict compiles kernels; do it before serving.
      instance.classify(new Float32Array(2 * instance.inputSize * instance.inputSize).fill(128), 2);
    } catch (error) {
      model.dispose();
      throw error;
    }
    return instance;
  }

  get version(): string {
    return `${this.card.name}@${this.card.version}`;
  }

  get inputSize(): number {
    return this.card.input.height;
  }

  get template(): AlignmentTemplate {
    return this.card.alignment;
  }

  /** `mirror` overrides the loaded setting for this call (`card`: what the model card says). */
  classify(crops: Float32Array, count: number, mirror?: MirrorAverageSetting): Float32Array {
    const mirrorAverage = mirror === undefined ? this.mirrorAverage : mirrorAverageOf(mirror, this.card);
    return classifyCrops(this.#model, crops, count, this.inputSize, this.card.input.normalisation, mirrorAverage);
  }

  dispose(): void {
    this.#model.dispose();
  }

  #checkShapes(): void {
    const input = this.#model.inputs[0]?.shape;
    const { height, width, channels } = this.card.input;
    if (height !== width || height !== this.card.alignment.size) {
      throw new Error(`card input ${width}x${height} does not match alignment size ${this.card.alignment.size}`);
    }
    if (!input || input[1] !== height || input[2] !== width || input[3] !== channels) {
      throw new Error(`model input shape ${JSON.stringify(input)} does not match the card (${height}x${width}x${channels})`);
    }
  }
}
