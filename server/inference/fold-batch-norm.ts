/**
 * Folds each inference-time BatchNormalization into the convolution before it, and the ReLU
 * after it into that convolution's fused activation, in a saved layers model's artifacts. The
 * trained model is conv -> BN -> ReLU (BN needs its own layer while training); for inference a BN
 * is an affine map per channel, so the conv's kernel and bias can absorb it exactly:
 *   kernel' = kernel * g,  bias' = (bias - mean) * g + beta,  g = gamma / sqrt(variance + epsilon).
 * On wasm the BN layers were 14% of the classifier's kernel time (tf.profile, batch of 4 faces),
 * and conv + bias + ReLU is one fused kernel where conv, BN and ReLU were three.
 *
 * Only a plain chain is rewritten: a BN whose single input is a Conv2D with a linear activation
 * that nothing else reads. Anything else is left as it is, so an unusual model still loads.
 */
import * as tf from '@tensorflow/tfjs';

interface LayerJson {
  name: string;
  class_name: string;
  config: Record<string, unknown>;
  inbound_nodes: unknown[];
}

interface FunctionalTopology {
  class_name: string;
  config: { layers: LayerJson[]; output_layers: [string, number, number][] };
}

/** Activations a Conv2D can fuse (those tfjs-layers accepts as a conv's `activation`). */
const FUSABLE_ACTIVATIONS = new Set(['relu', 'relu6', 'elu', 'selu', 'sigmoid', 'tanh', 'linear']);

function topologyOf(artifacts: tf.io.ModelArtifacts): FunctionalTopology | undefined {
  const raw = artifacts.modelTopology as { model_config?: FunctionalTopology } & Partial<FunctionalTopology> | undefined;
  const topology = raw?.model_config ?? raw;
  if (!topology || topology.class_name !== 'Model' || !Array.isArray(topology.config?.layers)) return undefined;
  return topology as FunctionalTopology;
}

/** The names of the layers a layer reads, for the single-input layers this rewrite touches. */
function inputsOf(layer: LayerJson): string[] {
  return layer.inbound_nodes.flatMap((node) => (Array.isArray(node) ? node.map((edge) => (Array.isArray(edge) ? String(edge[0]) : '')) : []));
}

function rewire(layers: LayerJson[], outputs: FunctionalTopology['config']['output_layers'], from: string, to: string): void {
  for (const layer of layers) {
    for (const node of layer.inbound_nodes) {
      if (!Array.isArray(node)) continue;
      for (const edge of node) if (Array.isArray(edge) && edge[0] === from) edge[0] = to;
    }
  }
  for (const output of outputs) if (output[0] === from) output[0] = to;
}

/**
 * The artifacts with every foldable conv -> BN (-> activation) chain merged into the conv, and
 * how many were folded. Weights come back as float32 (the input may be float16-quantised).
 */
export async function foldBatchNorm(artifacts: tf.io.ModelArtifacts): Promise<{ artifacts: tf.io.ModelArtifacts; folded: number }> {
  const original = topologyOf(artifacts);
  if (!original || !artifacts.weightSpecs || !artifacts.weightData) return { artifacts, folded: 0 };
  const topology = structuredClone(original);
  const { layers, output_layers: outputs } = topology.config;
  const byName = new Map(layers.map((l) => [l.name, l]));
  const removed = new Set<string>();
  const readers = (name: string): LayerJson[] => layers.filter((l) => !removed.has(l.name) && inputsOf(l).includes(name));
  const weights = tf.io.decodeWeights(artifacts.weightData, artifacts.weightSpecs);
  let folded = 0;

  for (const bn of layers) {
    if (bn.class_name !== 'BatchNormalization') continue;
    const inputs = inputsOf(bn);
    const conv = inputs.length === 1 ? byName.get(inputs[0]!) : undefined;
    const axis = bn.config.axis;
    const axisLast = axis === -1 || axis === 3 || (Array.isArray(axis) && axis.length === 1 && (axis[0] === -1 || axis[0] === 3));
    if (!conv || conv.class_name !== 'Conv2D' || (conv.config.activation ?? 'linear') !== 'linear' || !axisLast) continue;
    if (conv.config.data_format !== undefined && conv.config.data_format !== 'channels_last') continue;
    if (readers(conv.name).length !== 1) continue;
    const kernel = weights[`${conv.name}/kernel`];
    const variance = weights[`${bn.name}/moving_variance`];
    const mean = weights[`${bn.name}/moving_mean`];
    if (!kernel || !variance || !mean) continue;
    const epsilon = typeof bn.config.epsilon === 'number' ? bn.config.epsilon : 1e-3;

    const { kernelFolded, biasFolded } = tf.tidy(() => {
      const gamma = bn.config.scale === false ? tf.onesLike(variance) : weights[`${bn.name}/gamma`]!;
      const beta = bn.config.center === false ? tf.zerosLike(variance) : weights[`${bn.name}/beta`]!;
      const bias = conv.config.use_bias === false ? tf.zerosLike(mean) : weights[`${conv.name}/bias`]!;
      const g = gamma.div(variance.add(epsilon).sqrt());
      return { kernelFolded: kernel.mul(g), biasFolded: bias.sub(mean).mul(g).add(beta) };
    });
    for (const suffix of ['kernel', 'bias']) weights[`${conv.name}/${suffix}`]?.dispose();
    for (const suffix of ['gamma', 'beta', 'moving_mean', 'moving_variance']) {
      weights[`${bn.name}/${suffix}`]?.dispose();
      delete weights[`${bn.name}/${suffix}`];
    }
    weights[`${conv.name}/kernel`] = kernelFolded;
    weights[`${conv.name}/bias`] = biasFolded;
    conv.config.use_bias = true;
    removed.add(bn.name);
    rewire(layers, outputs, bn.name, conv.name);
    folded += 1;

    // BN's only reader an activation the conv can fuse: that goes into the conv too.
    const after = readers(conv.name);
    const activation = after.length === 1 ? after[0]! : undefined;
    if (activation?.class_name === 'Activation' && inputsOf(activation).length === 1 && FUSABLE_ACTIVATIONS.has(String(activation.config.activation))) {
      conv.config.activation = activation.config.activation;
      removed.add(activation.name);
      rewire(layers, outputs, activation.name, conv.name);
    }
  }

  if (folded === 0) {
    tf.dispose(Object.values(weights));
    return { artifacts, folded: 0 };
  }
  topology.config.layers = layers.filter((l) => !removed.has(l.name));
  try {
    const { data, specs } = await tf.io.encodeWeights(weights);
    const raw = artifacts.modelTopology as { model_config?: FunctionalTopology };
    const modelTopology = raw.model_config ? { ...raw, model_config: topology } : topology;
    return { artifacts: { ...artifacts, modelTopology, weightSpecs: specs, weightData: data }, folded };
  } finally {
    tf.dispose(Object.values(weights));
  }
}
