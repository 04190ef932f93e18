/**
 * Motion steps between crop detector runs (pipeline/face-motion.ts, face-tracking.ts): on real
 * faces of the test photos, a known shift and zoom are found again, a face that is gone or a flat
 * picture gives no step, and trackFaces moves a face by its patch for at most maxSteps frames in a
 * row before the crop detector runs again.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { before, describe, it } from 'node:test';
import sharp from 'sharp';
import { initBackend, tf } from '../contract/backend.ts';
import { repoRoot } from '../server/config.ts';
import { type BlazeModel, loadBlazeModel } from '../server/pipeline/blazeface.ts';
import { decodeImage } from '../server/pipeline/decode.ts';
import { anchorOf, estimateMotion, moveBox, movePoint } from '../server/pipeline/face-motion.ts';
import { detectAllFaces, type LocatedFace, trackFaces } from '../server/pipeline/face-tracking.ts';
import { DEFAULT_TRACKING, type TrackingOptions } from '../server/pipeline/tracking-options.ts';
import type { RgbFrame } from '../server/pipeline/types.ts';
import { readPhoto } from './live-support.ts';

const limits = { maxImageBytes: 8 * 1024 * 1024, maxImagePixels: 4096 * 4096 };
const motion = DEFAULT_TRACKING.motion;

/** The frame with its content moved by (dx, dy) whole pixels (edges replicated). */
function shifted(frame: RgbFrame, dx: number, dy: number): RgbFrame {
  const { width, height, data } = frame;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    const sy = Math.min(height - 1, Math.max(0, y - dy));
    for (let x = 0; x < width; x++) {
      const sx = Math.min(width - 1, Math.max(0, x - dx));
      out.set(data.subarray((sy * width + sx) * 3, (sy * width + sx) * 3 + 3), (y * width + x) * 3);
    }
  }
  return { width, height, data: out };
}

/** The frame zoomed by `scale` about (cx, cy), same size (bilinear, edges replicated). */
function zoomed(frame: RgbFrame, scale: number, cx: number, cy: number): RgbFrame {
  const { width, height, data } = frame;
  const out = new Uint8Array(data.length);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const u = Math.min(width - 1, Math.max(0, cx + (x + 0.5 - cx) / scale - 0.5));
      const v = Math.min(height - 1, Math.max(0, cy + (y + 0.5 - cy) / scale - 0.5));
      const x0 = Math.floor(u);
      const y0 = Math.floor(v);
      const x1 = Math.min(width - 1, x0 + 1);
      const y1 = Math.min(height - 1, y0 + 1);
      const fx = u - x0;
      const fy = v - y0;
      for (let c = 0; c < 3; c++) {
        const top = data[(y0 * width + x0) * 3 + c]! * (1 - fx) + data[(y0 * width + x1) * 3 + c]! * fx;
        const bottom = data[(y1 * width + x0) * 3 + c]! * (1 - fx) + data[(y1 * width + x1) * 3 + c]! * fx;
        out[(y * width + x) * 3 + c] = Math.round(top * (1 - fy) + bottom * fy);
      }
    }
  }
  return { width, height, data: out };
}

const centreOf = (f: LocatedFace): [number, number] => [f.region.x + f.region.width / 2, f.region.y + f.region.height / 2];

describe('motion steps', { timeout: 300_000 }, () => {
  let back: BlazeModel;
  let short: BlazeModel;
  let frame: RgbFrame;
  let faces: LocatedFace[];

  before(async () => {
    assert.equal(await initBackend('wasm'), 'wasm');
    const dir = path.join(repoRoot, 'models/face-detection');
    back = await loadBlazeModel(dir, 'back');
    short = await loadBlazeModel(dir, 'short');
    frame = await decodeImage(readPhoto('group4.jpg'), limits);
    faces = await detectAllFaces(back, frame, 0.5);
    assert.equal(faces.length, 4);
  });

  it('finds a known shift of every real face again, to about a pixel', () => {
    for (const [dx, dy] of [[7, -4], [-13, 9], [0, 0]] as const) {
      const moved = shifted(frame, dx, dy);
      for (const face of faces) {
        const anchor = anchorOf(face, frame, motion.cells);
        const estimate = estimateMotion(moved, anchor.patch, motion);
        assert.ok(estimate, `no step for a ${dx},${dy} shift of the face at ${centreOf(face).map(Math.round)}`);
        assert.ok(Math.abs(estimate.dx - dx) < 1.5 && Math.abs(estimate.dy - dy) < 1.5, `shift ${dx},${dy} estimated as ${estimate.dx.toFixed(2)},${estimate.dy.toFixed(2)}`);
        assert.ok(Math.abs(estimate.scale - 1) < 0.02, `scale ${estimate.scale} for a pure shift`);
        const eye = movePoint(anchor.patch, estimate, face.points.leftEye);
        assert.ok(Math.hypot(eye[0] - face.points.leftEye[0] - dx, eye[1] - face.points.leftEye[1] - dy) < 2);
      }
    }
  });

  it('follows a zoom: the face grows and its points move with it', () => {
    const [cx, cy] = [frame.width / 2, frame.height / 2];
    const scale = 1.04;
    const zoom = zoomed(frame, scale, cx, cy);
    for (const face of faces) {
      const anchor = anchorOf(face, frame, motion.cells);
      const estimate = estimateMotion(zoom, anchor.patch, motion);
      assert.ok(estimate, 'no step for a 4% zoom');
      assert.ok(Math.abs(estimate.scale - scale) < 0.02, `scale ${estimate.scale.toFixed(3)} for a ${scale} zoom`);
      for (const p of [face.points.leftEye, face.points.rightEye, face.points.mouth]) {
        const expected = [cx + (p[0] - cx) * scale, cy + (p[1] - cy) * scale];
        const got = movePoint(anchor.patch, estimate, p);
        const iod = Math.hypot(face.points.rightEye[0] - face.points.leftEye[0], face.points.rightEye[1] - face.points.leftEye[1]);
        assert.ok(Math.hypot(got[0] - expected[0]!, got[1] - expected[1]!) < 0.08 * iod, `point off by ${Math.hypot(got[0] - expected[0]!, got[1] - expected[1]!).toFixed(1)} px (eyes ${iod.toFixed(0)} px apart)`);
      }
      const box = moveBox(anchor.patch, estimate, face.region);
      assert.ok(Math.abs(box.width / face.region.width - estimate.scale) < 1e-9);
    }
  });

  it('gives no step where the face is gone, the picture is flat, or the face moved past the search window', async () => {
    const other = await decodeImage(await sharp(readPhoto('group1.jpg')).resize(frame.width, frame.height, { fit: 'fill' }).toBuffer(), limits);
    const flat: RgbFrame = { width: frame.width, height: frame.height, data: new Uint8Array(frame.data.length).fill(128) };
    for (const face of faces) {
      const anchor = anchorOf(face, frame, motion.cells);
      assert.equal(estimateMotion(other, anchor.patch, motion), undefined, 'another picture matched');
      assert.equal(estimateMotion(flat, anchor.patch, motion), undefined, 'a flat picture matched');
      const far = Math.ceil(anchor.patch.size * 0.6);
      assert.equal(estimateMotion(shifted(frame, far, 0), anchor.patch, motion), undefined, 'a face moved past the window matched');
      const flatAnchor = anchorOf(face, flat, motion.cells);
      assert.equal(estimateMotion(frame, flatAnchor.patch, motion), undefined, 'a flat patch matched');
    }
  });

  it('trackFaces moves a face by its patch for at most maxSteps frames, then runs the crop detector', async () => {
    const tensors = tf.memory().numTensors;
    const options: TrackingOptions = { ...DEFAULT_TRACKING, motion: { ...motion, maxSteps: 2 } };
    const next = shifted(frame, 5, 3);
    const anchors = faces.map((f) => anchorOf(f, frame, motion.cells));

    // Steps 0 and 1 of 2: moved by the patch, anchor kept, one step further.
    for (const steps of [0, 1]) {
      const [result] = await trackFaces(short, [{ frame: next, previous: faces.map((f, i) => ({ region: f.region, anchor: { ...anchors[i]!, steps } })) }], options);
      assert.equal(result!.lost, false);
      assert.equal(result!.faces.length, 4);
      for (const face of result!.faces) {
        assert.equal(face.anchor?.steps, steps + 1, 'a face moved by its patch carries its anchor one step further');
        const anchor = anchors.find((a) => a.patch === face.anchor!.patch)!;
        assert.ok(Math.abs(face.points.mouth[0] - anchor.points.mouth[0] - 5) < 1.5 && Math.abs(face.points.mouth[1] - anchor.points.mouth[1] - 3) < 1.5);
      }
    }
    // After maxSteps steps: the crop detector finds each face again (no anchor yet: the caller anchors it on this frame).
    const [refound] = await trackFaces(short, [{ frame: next, previous: faces.map((f, i) => ({ region: f.region, anchor: { ...anchors[i]!, steps: 2 } })) }], options);
    assert.equal(refound!.lost, false);
    assert.equal(refound!.faces.length, 4);
    assert.ok(refound!.faces.every((f) => f.anchor === undefined));
    // maxSteps 0: the crop detector on every tracked frame, whatever the anchors say.
    const off: TrackingOptions = { ...options, motion: { ...motion, maxSteps: 0 } };
    const [detected] = await trackFaces(short, [{ frame: next, previous: faces.map((f, i) => ({ region: f.region, anchor: anchors[i]! })) }], off);
    assert.ok(detected!.faces.length === 4 && detected!.faces.every((f) => f.anchor === undefined));
    // A face whose patch no longer matches goes to the crop detector on the same frame: here it is gone, so the frame is lost.
    const other = await decodeImage(await sharp(readPhoto('group1.jpg')).resize(frame.width, frame.height, { fit: 'fill' }).toBuffer(), limits);
    const [gone] = await trackFaces(short, [{ frame: other, previous: [{ region: faces[0]!.region, anchor: anchors[0]! }] }], options);
    assert.ok(gone!.faces.every((f) => f.anchor === undefined), 'a face on another picture was moved by its patch');
    assert.equal(tf.memory().numTensors, tensors, 'tracking leaked tensors');
  });
});
