import type * as tf from '@tensorflow/tfjs';
import { type FaceApiTensor3D, faceapi } from './faceapi.ts';
import type { Box } from '../../contract/geometry.ts';

/** Which face-api detector a path runs (see DETECTOR_* in server/config.ts). */
export interface DetectorSpec {
  /** `blazeface` is located by face-tracking.ts; this file runs face-api's `ssd` and `tiny` */
  kind: 'ssd' | 'tiny' | 'blazeface';
  inputSize: number;
  /** minimum detector confidence */
  minScore: number;
}

export interface Detection {
  /** clipped to the image, whole pixels */
  box: Box;
  score: number;
}

type FaceApiDetectorSpec = DetectorSpec & { kind: 'ssd' | 'tiny' };

function detectorOptions(spec: FaceApiDetectorSpec): faceapi.SsdMobilenetv1Options | faceapi.TinyFaceDetectorOptions {
  return spec.kind === 'ssd'
    ? new faceapi.SsdMobilenetv1Options({ minConfidence: spec.minScore, maxResults: 100 })
    : new faceapi.TinyFaceDetectorOptions({ inputSize: spec.inputSize, scoreThreshold: spec.minScore });
}

/** Same rounding as face-api's clipAtImageBorders, so landmark crops line up with the boxes we return. */
export function clipBox(box: Box, width: number, height: number): Box {
  const x = Math.max(box.x, 0);
  const y = Math.max(box.y, 0);
  const w = Math.min(box.x + box.width - x, width - x);
  const h = Math.min(box.y + box.height - y, height - y);
  return { x: Math.floor(x), y: Math.floor(y), width: Math.floor(w), height: Math.floor(h) };
}

/** Face boxes in an RGB image tensor [h, w, 3], clipped to the image. */
export async function detectFaces(image: tf.Tensor3D, spec: FaceApiDetectorSpec): Promise<Detection[]> {
  const [height, width] = image.shape;
  const found = await faceapi.detectAllFaces(image as unknown as FaceApiTensor3D as never, detectorOptions(spec));
  return found.map((d) => ({ box: clipBox({ x: d.box.x, y: d.box.y, width: d.box.width, height: d.box.height }, width, height), score: d.score }));
}

/**
 * Faces at least `minFaceSize` pixels a side, and how many were smaller: too few pixels to read an
 * expression from, so they are not analysed, but answers say how many were skipped.
 */
export function bigEnough<T extends { box: { width: number; height: number } }>(faces: T[], minFaceSize: number): { kept: T[]; tooSmall: number } {
  const kept = faces.filter((f) => f.box.width >= minFaceSize && f.box.height >= minFaceSize);
  return { kept, tooSmall: faces.length - kept.length };
}
