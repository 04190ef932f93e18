import type * as tf from '@tensorflow/tfjs';
import { type FaceApiTensor3D, faceapi } from './faceapi.ts';
import type { Box, Point } from '../../contract/geometry.ts';

/**
 * 68 landmarks (face-api order) per face box, in source pixels. All faces of a frame go through
 * the landmark net as one batch. Boxes must already be clipped to the image (see detect.ts).
 */
export async function detectLandmarks(image: tf.Tensor3D, boxes: Box[]): Promise<Point[][]> {
  if (boxes.length === 0) return [];
  const rects = boxes.map((b) => new faceapi.Rect(b.x, b.y, b.width, b.height));
  const crops = await faceapi.extractFaceTensors(image as unknown as FaceApiTensor3D, rects);
  try {
    const result = await faceapi.nets.faceLandmark68Net.detectLandmarks(crops);
    const perFace = Array.isArray(result) ? result : [result];
    if (perFace.length !== boxes.length) throw new Error(`landmarks for ${perFace.length} of ${boxes.length} faces`);
    return perFace.map((landmarks, i) => {
      const box = boxes[i]!;
      return landmarks.positions.map((p): Point => [p.x + box.x, p.y + box.y]);
    });
  } finally {
    for (const crop of crops) crop.dispose();
  }
}
