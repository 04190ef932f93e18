/**
 * The per-frame stages before classification, composed: decode -> detect -> landmarks -> align.
 * Runs inside an inference worker, on that worker's tfjs instance; each stage is a pure function
 * from server/pipeline/. The aligned crops go on to the classifier batcher.
 */
import { AppError } from '../../contract/errors.ts';
import type { AlignmentTemplate } from '../../contract/model-card.ts';
import { tf } from '../../contract/backend.ts';
import { alignFace } from '../pipeline/align.ts';
import { decodeImage, type DecodeLimits } from '../pipeline/decode.ts';
import { detectFaces, type DetectorSpec } from '../pipeline/detect.ts';
import { detectLandmarks } from '../pipeline/landmarks.ts';
import type { RgbFrame } from '../pipeline/types.ts';
import type { FrameInput, PreparedFrame } from './worker-protocol.ts';

export interface PrepareOptions {
  detector: DetectorSpec;
  minFaceSize: number;
  limits: DecodeLimits;
  template: AlignmentTemplate;
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

export async function prepareFrame(input: FrameInput, options: PrepareOptions): Promise<PreparedFrame> {
  let mark = performance.now();
  const lap = (): number => {
    const now = performance.now();
    const spent = now - mark;
    mark = now;
    return spent;
  };
  const frame = await toFrame(input, options.limits);
  const decode = lap();
  const image = tf.tensor3d(frame.data, [frame.height, frame.width, 3], 'int32');
  try {
    const detections = await detectFaces(image, options.detector, options.minFaceSize);
    const detect = lap();
    const landmarks = await detectLandmarks(image, detections.map((d) => d.box));
    const landmarksMs = lap();
    const { template } = options;
    const cropSize = template.size * template.size;
    const crops = new Float32Array(detections.length * cropSize);
    detections.forEach((_, i) => crops.set(alignFace(frame, landmarks[i]!, template), i * cropSize));
    const align = lap();
    return {
      width: frame.width,
      height: frame.height,
      faces: detections.map((d, i) => ({ box: d.box, score: d.score, landmarks: landmarks[i]! })),
      crops,
      cropSize: template.size,
      timings: { decode, detect, landmarks: landmarksMs, align },
    };
  } finally {
    image.dispose();
  }
}
