/**
 * Live face location with the MediaPipe detectors of blazeface.ts: a keyframe runs the `back`
 * detector on the whole frame; between keyframes each face is found again by the `short` detector
 * on a square crop around where it was (about a fifth of a keyframe's cost per face, and the crop
 * shows the model the large, centred face it was trained on). A crop whose best detection near
 * the previous position scores below `minScore` has lost its face; the caller then runs a keyframe
 * on the same frame, which is also how a face that left the picture is dropped.
 *
 * Cheaper still, for up to `motion.maxSteps` frames after the detector saw a face, the face is
 * moved by matching its grey patch from that frame (face-motion.ts): under a millisecond
 * instead of the crop detector's several. A face whose patch no longer matches (it turned, changed,
 * left) goes to the crop detector on the same frame, as does every face after maxSteps steps.
 *
 * Alignment uses the detectors' eye and mouth keypoints, moved by a fixed per-point correction to
 * where face-api's 68 landmarks put those centres, and boxes are mapped to face-api-like boxes
 * (BlazeFace boxes are tighter: brows to chin). Both corrections were fitted on the 22 faces of
 * ../shared/media/group1-6.jpg (median keypoint offset, mean box offset); with them, emotion labels
 * agree with the 68-landmark alignment on 95% of those faces, 96% of groups-pan.mp4's and 100% of
 * one-face.mp4's (without: 86%, 91%, 100%).
 */
import type { FacePoints } from '../../contract/face-points.ts';
import { type Box, iou, type Point } from '../../contract/geometry.ts';
import type { FaceAnchor, FollowedFace, RgbFrame } from './types.ts';
import { estimateMotion, type MotionEstimate, moveBox, movePoint } from './face-motion.ts';
import { BLAZE_KEYPOINTS, type BlazeDetection, type BlazeModel, detectFull, detectInRegions, type SquareRegion } from './blazeface.ts';

/** Offsets of eye and mouth centres in a face frame: unit = inter-ocular distance, x along the eye line, y down the face. */
export interface PointCorrection {
  leftEye: Point;
  rightEye: Point;
  mouth: Point;
}

/** BlazeFace box -> face-api-like box: centre shift and size in units of the BlazeFace box's longer side. */
export interface BoxCalibration {
  dx: number;
  dy: number;
  width: number;
  height: number;
}

/** Per detector: `back` on whole frames (keyframes), `short` on 2x crops (tracking). */
export const KEYPOINT_CORRECTION: Record<'back' | 'short', PointCorrection> = {
  back: { leftEye: [-0.053, -0.098], rightEye: [0.002, -0.062], mouth: [-0.002, -0.031] },
  short: { leftEye: [-0.037, -0.066], rightEye: [-0.024, -0.049], mouth: [0.026, -0.047] },
};
export const BOX_CALIBRATION: Record<'back' | 'short', BoxCalibration> = {
  back: { dx: -0.017, dy: -0.143, width: 0.89, height: 1.309 },
  short: { dx: -0.023, dy: -0.134, width: 0.868, height: 1.278 },
};

/** A face found on this frame. */
export interface LocatedFace {
  /** face-api-like box, source pixels (what clients get) */
  box: Box;
  /** the detector's own box, from which the next frame's crop is cut */
  region: Box;
  score: number;
  /** corrected eye and mouth centres, for alignment */
  points: FacePoints;
  /** where the detector last saw this face (for the next frame's motion step), when motion steps are on */
  anchor?: FaceAnchor;
}

import { DEFAULT_TRACKING, type TrackingOptions } from './tracking-options.ts';

export { DEFAULT_TRACKING, type TrackingOptions };

function centre(box: Box): Point {
  return [box.x + box.width / 2, box.y + box.height / 2];
}

export function calibrateBox(box: Box, c: BoxCalibration): Box {
  const side = Math.max(box.width, box.height);
  const [cx, cy] = centre(box);
  const width = c.width * side;
  const height = c.height * side;
  return { x: cx + c.dx * side - width / 2, y: cy + c.dy * side - height / 2, width, height };
}

/** Moves each point by its correction, expressed in the face's own frame (so it turns and scales with the face). */
export function correctPoints(p: FacePoints, c: PointCorrection): FacePoints {
  const dx = p.rightEye[0] - p.leftEye[0];
  const dy = p.rightEye[1] - p.leftEye[1];
  const iod = Math.hypot(dx, dy);
  if (!(iod > 0)) return p;
  const ux: Point = [dx / iod, dy / iod];
  const uy: Point = [-ux[1], ux[0]];
  const move = (q: Point, o: Point): Point => [q[0] + iod * (o[0] * ux[0] + o[1] * uy[0]), q[1] + iod * (o[0] * ux[1] + o[1] * uy[1])];
  return { leftEye: move(p.leftEye, c.leftEye), rightEye: move(p.rightEye, c.rightEye), mouth: move(p.mouth, c.mouth) };
}

/** Eye and mouth centres of a detection; the subject's right eye is the eye on the image's left. */
function facePoints(d: BlazeDetection, correction: PointCorrection): FacePoints {
  return correctPoints(
    { leftEye: d.keypoints[BLAZE_KEYPOINTS.rightEye]!, rightEye: d.keypoints[BLAZE_KEYPOINTS.leftEye]!, mouth: d.keypoints[BLAZE_KEYPOINTS.mouth]! },
    correction,
  );
}

/** The part of a box inside the frame (a face at the edge keeps the visible part). */
export function clipToFrame(box: Box, width: number, height: number): Box {
  const x = Math.max(0, box.x);
  const y = Math.max(0, box.y);
  return { x, y, width: Math.max(0, Math.min(width, box.x + box.width) - x), height: Math.max(0, Math.min(height, box.y + box.height) - y) };
}

function located(d: BlazeDetection, kind: 'back' | 'short', frame: RgbFrame): LocatedFace {
  const box = clipToFrame(calibrateBox(d.box, BOX_CALIBRATION[kind]), frame.width, frame.height);
  return { box, region: d.box, score: d.score, points: facePoints(d, KEYPOINT_CORRECTION[kind]) };
}

/** Keyframe: every face of the whole frame. */
export async function detectAllFaces(model: BlazeModel, frame: RgbFrame, minScore: number): Promise<LocatedFace[]> {
  const found = await detectFull(model, frame, { minScore });
  return found.map((d) => located(d, 'back', frame));
}

/** The square crop a tracked face is looked for in on the next frame. */
export function cropAround(region: Box, expand: number): SquareRegion {
  const [cx, cy] = centre(region);
  const size = Math.max(region.width, region.height) * expand;
  return { x: cx - size / 2, y: cy - size / 2, size };
}

/** The highest-scoring detection of a crop within `maxShift` face sizes of the old centre, or undefined (lost). */
export function pickContinuation(previous: Box, found: readonly BlazeDetection[], options: Pick<TrackingOptions, 'minScore' | 'maxShift'>): BlazeDetection | undefined {
  const [px, py] = centre(previous);
  const size = Math.max(previous.width, previous.height);
  let best: BlazeDetection | undefined;
  for (const d of found) {
    if (d.score < options.minScore) continue;
    const [cx, cy] = centre(d.box);
    if (Math.hypot(cx - px, cy - py) > options.maxShift * size) continue;
    if (!best || d.score > best.score) best = d;
  }
  return best;
}

/** The anchor's face where the estimate puts it: one more motion step. */
function moved(anchor: FaceAnchor, estimate: MotionEstimate, frame: RgbFrame): LocatedFace {
  const point = (p: Point): Point => movePoint(anchor.patch, estimate, p);
  const { leftEye, rightEye, mouth } = anchor.points;
  return {
    // The anchor's box was clipped to its frame; the moved box is clipped to this one.
    box: clipToFrame(moveBox(anchor.patch, estimate, anchor.box), frame.width, frame.height),
    region: moveBox(anchor.patch, estimate, anchor.region),
    score: anchor.score,
    points: { leftEye: point(leftEye), rightEye: point(rightEye), mouth: point(mouth) },
    anchor: { ...anchor, steps: anchor.steps + 1 },
  };
}

/** A frame whose faces are followed from the previous frame of its stream. */
export interface FollowedFrame {
  frame: RgbFrame;
  /** the faces on the stream's previous frame */
  previous: readonly FollowedFace[];
}

/**
 * Between keyframes: each previous face moved by a motion step where its anchor allows one and
 * matches, else looked for again in a crop (the crops of all the given frames in one batch). Per
 * frame, `lost` is true when any face was not found again; faces that converged on one face are
 * merged (the better score stays). Faces the crop detector found have no anchor yet (see
 * face-motion.ts anchorOf); moved faces carry theirs, one step further.
 */
export async function trackFaces(model: BlazeModel, frames: readonly FollowedFrame[], options: TrackingOptions = DEFAULT_TRACKING): Promise<{ faces: LocatedFace[]; lost: boolean }[]> {
  const { motion } = options;
  // Per face: moved by its patch, or a crop for the detector.
  const steps = frames.map(({ frame, previous }) =>
    previous.map(({ region, anchor }) => {
      if (motion.maxSteps > 0 && anchor && anchor.steps < motion.maxSteps) {
        const estimate = estimateMotion(frame, anchor.patch, motion);
        if (estimate) return moved(anchor, estimate, frame);
      }
      return region;
    }),
  );
  const crops = frames.flatMap(({ frame }, f) => steps[f]!.flatMap((step) => ('box' in step ? [] : [{ frame, region: cropAround(step, options.expand) }])));
  const found = await detectInRegions(model, crops, { minScore: Math.min(0.1, options.minScore), maxFaces: 5 });
  let next = 0;
  return frames.map(({ frame }, f) => {
    const faces: LocatedFace[] = [];
    let lost = false;
    for (const step of steps[f]!) {
      let face: LocatedFace;
      if ('box' in step) face = step;
      else {
        const continuation = pickContinuation(step, found[next++] ?? [], options);
        if (!continuation) {
          lost = true;
          continue;
        }
        face = located(continuation, 'short', frame);
      }
      const same = faces.findIndex((other) => iou(other.region, face.region) > 0.5);
      if (same < 0) faces.push(face);
      else if (faces[same]!.score < face.score) faces[same] = face;
    }
    return { faces, lost };
  });
}
