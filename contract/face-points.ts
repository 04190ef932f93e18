/**
 * Where a face's eyes and mouth are, from face-api's 68 landmarks. The server aligns live faces
 * with these points and training measures the FER2013 alignment template with the same ones, so
 * both sides must compute them identically.
 */
import { AppError } from './errors.ts';
import type { Point } from './geometry.ts';

/** face-api's 68-point layout (iBUG 300-W): index ranges, end exclusive. */
export const LANDMARKS_68 = {
  count: 68,
  /** eye on the image's left (the subject's right eye) */
  leftEye: [36, 42],
  /** eye on the image's right */
  rightEye: [42, 48],
  /** outer (48..59) and inner (60..67) lip contours */
  mouth: [48, 68],
} as const;

export interface FacePoints {
  leftEye: Point;
  rightEye: Point;
  mouth: Point;
}

function meanPoint(points: readonly Point[], from: number, to: number): Point {
  let sx = 0;
  let sy = 0;
  for (let i = from; i < to; i++) {
    const p = points[i]!;
    sx += p[0];
    sy += p[1];
  }
  return [sx / (to - from), sy / (to - from)];
}

/** Eye centres (mean of the 6 points of each eye) and mouth centre (mean of the 20 lip points). */
export function facePointsFrom68(landmarks: readonly Point[]): FacePoints {
  if (landmarks.length !== LANDMARKS_68.count) {
    throw new AppError('bad_request', `expected ${LANDMARKS_68.count} landmarks, got ${landmarks.length}`);
  }
  for (const p of landmarks) {
    if (!Number.isFinite(p[0]) || !Number.isFinite(p[1])) throw new AppError('bad_request', 'landmark is not finite');
  }
  return {
    leftEye: meanPoint(landmarks, ...LANDMARKS_68.leftEye),
    rightEye: meanPoint(landmarks, ...LANDMARKS_68.rightEye),
    mouth: meanPoint(landmarks, ...LANDMARKS_68.mouth),
  };
}

