/**
 * face-api's Node wasm build. It `require`s the same @tensorflow/tfjs instance that
 * contract/backend.ts initialises, so it runs on the backend chosen there.
 * Weights come from the npm package folder (loadFromDisk), never from the network.
 */
import * as faceapi from '@vladmandic/face-api/dist/face-api.node-wasm.js';

export { faceapi };

/** face-api's typings bundle their own copy of tfjs's Tensor class; the runtime object is the same. */
export type FaceApiTensor3D = Parameters<typeof faceapi.extractFaceTensors>[0];

export async function loadFaceNets(modelDir: string): Promise<void> {
  await faceapi.nets.ssdMobilenetv1.loadFromDisk(modelDir);
  await faceapi.nets.tinyFaceDetector.loadFromDisk(modelDir);
  await faceapi.nets.faceLandmark68Net.loadFromDisk(modelDir);
}
