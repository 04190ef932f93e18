/**
 * The per-frame stages before classification, composed: decode -> locate -> align. Runs inside an
 * inference worker, on that worker's tfjs instance; each stage is a pure function from
 * server/pipeline/. Locating is either a keyframe (the plan's detector on the whole frame) or,
 * for live streams with faces to follow, tracking (a crop per face); tracking turns into a
 * keyframe on the same frame when a face is lost or the scene cut (see pipeline/keyframes.ts).
 * Several frames can be prepared together; their tracking crops then share one batch.
 */
import { AppError } from '../../contract/errors.ts';
import { facePointsFrom68 } from '../../contract/face-points.ts';
import type { AlignmentTemplate } from '../../contract/model-card.ts';
import { tf } from '../../contract/backend.ts';
import { alignFace } from '../pipeline/align.ts';
import type { BlazeModel } from '../pipeline/blazeface.ts';
import { decodeImage, type DecodeLimits } from '../pipeline/decode.ts';
import { bigEnough, detectFaces, type DetectorSpec } from '../pipeline/detect.ts';
import { anchorOf } from '../pipeline/face-motion.ts';
import { detectAllFaces, type LocatedFace, trackFaces } from '../pipeline/face-tracking.ts';
import { detectLandmarks } from '../pipeline/landmarks.ts';
import { greyThumbnail, thumbnailDifference } from '../pipeline/scene-cut.ts';
import type { DetectedFace, FaceOrigin, RgbFrame } from '../pipeline/types.ts';
import type { KeyframeReason } from '../pipeline/keyframes.ts';
import type { FrameInput, FramePlan, PreparedFrame } from './worker-protocol.ts';

export interface PrepareContext {
  minFaceSize: number;
  limits: DecodeLimits;
  template: AlignmentTemplate;
  /** the MediaPipe graphs: `back` for keyframes, `short` for tracking crops (loaded when a path uses them) */
  blaze?: { back: BlazeModel; short: BlazeModel };
}

async function toFrame(input: FrameInput, limits: DecodeLimits): Promise<RgbFrame> {
  if (input.kind === 'encoded') return decodeImage(input.bytes, limits);
  const expected = input.width * input.height * 3;
  if (!(input.width > 0 && input.height > 0) || input.data.byteLength !== expected) {
    throw new AppError('bad_request', `raw frame of ${input.width}x${input.height} needs ${expected} RGB bytes, got ${input.data.byteLength}`);
  }
  if (input.width * input.height > limits.maxImagePixels) {
    throw new AppError('image_too_large', `the frame has ${input.width}x${input.height} pixels, the limit is ${limits.maxImagePixels}`);
  }
  return { data: input.data, width: input.width, height: input.height };
}

function blazeModels(context: PrepareContext): { back: BlazeModel; short: BlazeModel } {
  if (!context.blaze) throw new AppError('internal', 'the blazeface detector is used but its models were not loaded');
  return context.blaze;
}

const fromLocated = (face: LocatedFace, origin: FaceOrigin): DetectedFace => ({
  box: face.box,
  score: face.score,
  points: face.points,
  origin,
  region: face.region,
  ...(face.anchor ? { anchor: face.anchor } : {}),
});

/**
 * Keyframe: the plan's detector on the whole frame. face-api's detectors add 68 landmarks (their
 * eye and mouth points come from them); the MediaPipe detector brings its own keypoints.
 */
async function detect(frame: RgbFrame, detector: DetectorSpec, context: PrepareContext): Promise<{ faces: DetectedFace[]; tooSmall: number; detectMs: number; landmarksMs?: number }> {
  const started = performance.now();
  if (detector.kind === 'blazeface') {
    const { kept, tooSmall } = bigEnough(await detectAllFaces(blazeModels(context).back, frame, detector.minScore), context.minFaceSize);
    return { faces: kept.map((f) => fromLocated(f, 'detection')), tooSmall, detectMs: performance.now() - started };
  }
  // face-api takes a tensor of the whole frame.
  const image = tf.tensor3d(frame.data, [frame.height, frame.width, 3], 'int32');
  try {
    const { kept: detections, tooSmall } = bigEnough(await detectFaces(image, { ...detector, kind: detector.kind }), context.minFaceSize);
    const detected = performance.now();
    const landmarks = await detectLandmarks(image, detections.map((d) => d.box));
    const faces = detections.map((d, i): DetectedFace => ({ box: d.box, score: d.score, points: facePointsFrom68(landmarks[i]!), origin: 'detection' }));
    return { faces, tooSmall, detectMs: detected - started, landmarksMs: performance.now() - detected };
  } finally {
    image.dispose();
  }
}

/** A frame decoded, with its scene-cut check done. */
interface Decoded {
  frame: RgbFrame;
  plan: FramePlan;
  thumbnail?: Uint8Array;
  cut: boolean;
  decodeMs: number;
}

async function decodeWithCutCheck(input: FrameInput, plan: FramePlan, limits: DecodeLimits): Promise<Decoded> {
  const started = performance.now();
  const frame = await toFrame(input, limits);
  const thumbnail = plan.sceneCut ? greyThumbnail(frame) : undefined;
  const cut = plan.sceneCut?.previous !== undefined && thumbnail !== undefined && thumbnailDifference(thumbnail, plan.sceneCut.previous) > plan.sceneCut.threshold;
  return { frame, plan, thumbnail, cut, decodeMs: performance.now() - started };
}

export type Prepared = { ok: true; frame: PreparedFrame } | { ok: false; error: unknown };

/**
 * Several frames at once (from any streams): all are decoded concurrently, the tracking crops of
 * every frame that follows its faces run as one batch, frames that need the detector (keyframes,
 * lost faces, cuts) run it one by one, then every face is aligned. Each frame succeeds or fails
 * on its own.
 */
export async function prepareFrames(items: readonly { input: FrameInput; plan: FramePlan }[], context: PrepareContext): Promise<Prepared[]> {
  const decoded = await Promise.all(
    items.map(({ input, plan }) => decodeWithCutCheck(input, plan, context.limits).then((d) => ({ ok: true as const, d }), (error: unknown) => ({ ok: false as const, error }))),
  );
  const followed = decoded.flatMap((r, index) => (r.ok && r.d.plan.track && r.d.plan.track.faces.length > 0 && !r.d.cut ? [{ index, d: r.d, track: r.d.plan.track }] : []));
  const trackStarted = performance.now();
  const tracked = new Map<number, { faces: LocatedFace[]; lost: boolean }>();
  if (followed.length > 0) {
    // One tracking setting per server, so the first frame's options hold for all.
    const results = await trackFaces(blazeModels(context).short, followed.map((f) => ({ frame: f.d.frame, previous: f.track.faces })), followed[0]!.track.options);
    results.forEach((result, i) => tracked.set(followed[i]!.index, result));
  }
  const trackMs = followed.length > 0 ? (performance.now() - trackStarted) / followed.length : 0;

  const out: Prepared[] = [];
  for (const [index, result] of decoded.entries()) {
    if (!result.ok) {
      out.push(result);
      continue;
    }
    try {
      out.push({ ok: true, frame: await locateAndAlign(result.d, tracked.get(index), trackMs, context) });
    } catch (error) {
      out.push({ ok: false, error });
    }
  }
  return out;
}

/** The rest of one frame's preparation, given its tracking result if it was followed. */
async function locateAndAlign(d: Decoded, tracked: { faces: LocatedFace[]; lost: boolean } | undefined, trackMs: number, context: PrepareContext): Promise<PreparedFrame> {
  const timings: PreparedFrame['timings'] = { decode: d.decodeMs };
  let faces: DetectedFace[] | undefined;
  let skippedSmallFaces = 0;
  let keyframe: KeyframeReason | undefined = d.cut ? 'cut' : 'planned';
  if (tracked) {
    timings.track = trackMs;
    if (tracked.lost) keyframe = 'lost';
    else {
      faces = tracked.faces.map((f) => fromLocated(f, 'tracking'));
      keyframe = undefined;
    }
  }
  if (!faces) {
    const detected = await detect(d.frame, d.plan.detector, context);
    faces = detected.faces;
    skippedSmallFaces = detected.tooSmall;
    timings.detect = detected.detectMs;
    if (detected.landmarksMs !== undefined) timings.landmarks = detected.landmarksMs;
  }
  const motion = d.plan.track?.options.motion;
  if (motion && motion.maxSteps > 0) {
    // Faces the detector found on this frame anchor the motion steps of the next frames.
    faces = faces.map((face) => (face.anchor || !face.region ? face : { ...face, anchor: anchorOf({ ...face, region: face.region }, d.frame, motion.cells) }));
  }
  const alignStarted = performance.now();
  const { template } = context;
  const cropSize = template.size * template.size;
  const crops = new Float32Array(faces.length * cropSize);
  faces.forEach((face, i) => crops.set(alignFace(d.frame, face.points, template), i * cropSize));
  timings.align = performance.now() - alignStarted;
  return { width: d.frame.width, height: d.frame.height, faces, skippedSmallFaces, crops, cropSize: template.size, timings, keyframe, thumbnail: d.thumbnail };
}

/** One frame: prepareFrames of one, its error thrown. */
export async function prepareFrame(input: FrameInput, plan: FramePlan, context: PrepareContext): Promise<PreparedFrame> {
  const [result] = await prepareFrames([{ input, plan }], context);
  if (!result!.ok) throw result!.error;
  return result!.frame;
}
