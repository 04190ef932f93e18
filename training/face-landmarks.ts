/**
 * face-api (SSD or tiny detector + 68 landmarks) for offline tools and tests: the template
 * measurement on FER2013 and the alignment test on real photos. Weights come from the npm
 * package's model/ folder, never from the network.
 */
import path from 'node:path';
import { createRequire } from 'node:module';
import * as faceapi from '@vladmandic/face-api/dist/face-api.node-wasm.js';
import { initBackend, tf } from '../contract/backend.ts';
import type { Box, Point } from '../contract/geometry.ts';

/** face-api's SSD MobileNet v1 or tiny face detector. */
export type DetectorName = 'ssd' | 'tiny';

export interface LandmarkedFace {
  box: Box;
  score: number;
  /** 68 points in input-image pixels (face-api order) */
  landmarks: Point[];
}

export interface FaceLandmarker {
  /** All faces in an RGB image tensor [h, w, 3] (values 0..255); the caller keeps ownership of it. */
  detect(image: tf.Tensor3D): Promise<LandmarkedFace[]>;
}

const require = createRequire(import.meta.url);

function modelDir(): string {
  return path.join(path.dirname(require.resolve('@vladmandic/face-api/package.json')), 'model');
}

export interface FaceLandmarkerOptions {
  detector: DetectorName;
  /** SSD minConfidence / tiny scoreThreshold */
  minScore?: number;
  /** tiny detector input size (multiple of 32) */
  tinyInputSize?: number;
}

export async function createFaceLandmarker(options: FaceLandmarkerOptions): Promise<FaceLandmarker> {
  await initBackend('wasm');
  const dir = modelDir();
  const minScore = options.minScore ?? (options.detector === 'ssd' ? 0.4 : 0.3);
  let detectorOptions: faceapi.SsdMobilenetv1Options | faceapi.TinyFaceDetectorOptions;
  if (options.detector === 'ssd') {
    if (!faceapi.nets.ssdMobilenetv1.isLoaded) await faceapi.nets.ssdMobilenetv1.loadFromDisk(dir);
    detectorOptions = new faceapi.SsdMobilenetv1Options({ minConfidence: minScore });
  } else {
    if (!faceapi.nets.tinyFaceDetector.isLoaded) await faceapi.nets.tinyFaceDetector.loadFromDisk(dir);
    detectorOptions = new faceapi.TinyFaceDetectorOptions({
      inputSize: options.tinyInputSize ?? 224,
      scoreThreshold: minScore,
    });
  }
  if (!faceapi.nets.faceLandmark68Net.isLoaded) await faceapi.nets.faceLandmark68Net.loadFromDisk(dir);

  return {
    async detect(image) {
      // face-api's types name its own bundled tf; at runtime it is the same @tensorflow/tfjs instance.
      const input = image as unknown as faceapi.tf.Tensor3D;
      const results = await faceapi.detectAllFaces(input, detectorOptions).withFaceLandmarks();
      return results.map((result) => {
        const { x, y, width, height } = result.detection.box;
        return {
          box: { x, y, width, height },
          score: result.detection.score,
          landmarks: result.landmarks.positions.map((p): Point => [p.x, p.y]),
        };
      });
    },
  };
}
