/**
 * Reads tfjs models from disk (layers models as model.json + one weights .bin, which it also
 * writes; graph models from their JSON file). tfjs's own
 * `file://` handler ships only with tfjs-node, which cannot install everywhere, so this is the
 * path used on every backend.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import * as tf from '@tensorflow/tfjs';

/**
 * A model JSON file and the weight shards its manifest names (paths relative to the JSON file), as
 * the artifacts tfjs loads. Graph models keep their signature and initializer beside the topology.
 */
async function readArtifacts(jsonPath: string): Promise<tf.io.ModelArtifacts> {
  const dir = path.dirname(jsonPath);
  const modelJson = JSON.parse(await readFile(jsonPath, 'utf8')) as tf.io.ModelJSON & { signature?: object; modelInitializer?: object };
  if (!Array.isArray(modelJson.weightsManifest)) throw new Error(`${jsonPath} has no weightsManifest`);
  const specs: tf.io.WeightsManifestEntry[] = [];
  const buffers: Buffer[] = [];
  for (const group of modelJson.weightsManifest) {
    specs.push(...group.weights);
    for (const file of group.paths) buffers.push(await readFile(path.join(dir, file)));
  }
  const joined = Buffer.concat(buffers);
  const weightData = joined.buffer.slice(joined.byteOffset, joined.byteOffset + joined.byteLength);
  return {
    modelTopology: modelJson.modelTopology,
    format: modelJson.format,
    generatedBy: modelJson.generatedBy,
    convertedBy: modelJson.convertedBy,
    trainingConfig: modelJson.trainingConfig,
    userDefinedMetadata: modelJson.userDefinedMetadata,
    signature: modelJson.signature,
    modelInitializer: modelJson.modelInitializer,
    weightSpecs: specs,
    weightData,
  };
}

/** A layers model saved as `<dir>/model.json` + `weights.bin` (what training writes). */
export function directoryIO(dir: string): tf.io.IOHandler {
  return {
    load: () => readArtifacts(path.join(dir, 'model.json')),
    async save(artifacts: tf.io.ModelArtifacts): Promise<tf.io.SaveResult> {
      await mkdir(dir, { recursive: true });
      const weightsFile = 'weights.bin';
      const weightData = artifacts.weightData;
      if (!weightData || Array.isArray(weightData)) throw new Error('expected one weights buffer');
      const modelJson = {
        modelTopology: artifacts.modelTopology,
        format: artifacts.format ?? 'layers-model',
        generatedBy: artifacts.generatedBy,
        convertedBy: artifacts.convertedBy ?? null,
        userDefinedMetadata: artifacts.userDefinedMetadata,
        weightsManifest: [{ paths: [weightsFile], weights: artifacts.weightSpecs ?? [] }],
      };
      // Write to temporary names and rename, so a server watching the folder never reads half a model.
      await writeFile(path.join(dir, `${weightsFile}.tmp`), Buffer.from(weightData));
      await writeFile(path.join(dir, 'model.json.tmp'), JSON.stringify(modelJson));
      await rename(path.join(dir, `${weightsFile}.tmp`), path.join(dir, weightsFile));
      await rename(path.join(dir, 'model.json.tmp'), path.join(dir, 'model.json'));
      return { modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: 'JSON' } };
    },
  };
}

export function loadLayersModelFromDir(dir: string): Promise<tf.LayersModel> {
  return tf.loadLayersModel(directoryIO(dir));
}

/** A tfjs graph model from its JSON file (vendored graph models are named `<model>.json`, several to a folder). */
export async function loadGraphModelFromFile(jsonPath: string): Promise<tf.GraphModel> {
  const artifacts = await readArtifacts(jsonPath);
  if (artifacts.format !== 'graph-model') throw new Error(`${jsonPath}: expected format "graph-model", got ${JSON.stringify(artifacts.format)}`);
  return tf.loadGraphModel(tf.io.fromMemory(artifacts));
}
