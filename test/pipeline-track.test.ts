import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { EMOTIONS, scoresFromArray, type EmotionScores } from '../contract/emotions.ts';
import { EmaSmoother } from '../server/pipeline/smooth.ts';
import { FaceTracker } from '../server/pipeline/track.ts';
import type { ClassifiedFace } from '../server/pipeline/types.ts';
import type { Box, Point } from '../contract/geometry.ts';

function scores(dominant: number, p = 0.7): EmotionScores {
  const rest = (1 - p) / (EMOTIONS.length - 1);
  return scoresFromArray(EMOTIONS.map((_, i) => (i === dominant ? p : rest)));
}

/** A face with eyes and mouth where they sit in a face of this box. */
function face(box: Box, emotions = scores(6)): ClassifiedFace {
  const at = (fx: number, fy: number): Point => [box.x + fx * box.width, box.y + fy * box.height];
  return { box, score: 0.9, points: { leftEye: at(0.3, 0.4), rightEye: at(0.7, 0.4), mouth: at(0.5, 0.75) }, emotions, origin: 'detection' };
}

const sum = (s: EmotionScores) => Object.values(s).reduce((a, b) => a + b, 0);

describe('FaceTracker', () => {
  it('keeps trackIds stable while faces move a little, in any order', () => {
    const tracker = new FaceTracker();
    const first = tracker.update([face({ x: 100, y: 100, width: 80, height: 100 }), face({ x: 400, y: 120, width: 90, height: 110 })], 0);
    assert.deepEqual(first.map((f) => f.trackId), [1, 2]);
    const second = tracker.update([face({ x: 410, y: 125, width: 90, height: 110 }), face({ x: 108, y: 96, width: 82, height: 100 })], 200);
    assert.deepEqual(second.map((f) => f.trackId), [2, 1]);
    assert.equal(tracker.activeTracks, 2);
  });

  it('gives a new face a new id and expires tracks unseen for maxAgeMs', () => {
    const tracker = new FaceTracker({ maxAgeMs: 1000 });
    tracker.update([face({ x: 100, y: 100, width: 80, height: 100 })], 0);
    const withNew = tracker.update([face({ x: 100, y: 100, width: 80, height: 100 }), face({ x: 600, y: 100, width: 80, height: 100 })], 100);
    assert.deepEqual(withNew.map((f) => f.trackId), [1, 2]);
    tracker.update([], 500);
    assert.equal(tracker.activeTracks, 2);
    const later = tracker.update([face({ x: 100, y: 100, width: 80, height: 100 })], 2000);
    assert.deepEqual(later.map((f) => f.trackId), [3]);
    assert.equal(tracker.activeTracks, 1);
  });

  it('does not match a face to a far-away track', () => {
    const tracker = new FaceTracker();
    tracker.update([face({ x: 0, y: 0, width: 50, height: 50 })], 0);
    const [moved] = tracker.update([face({ x: 500, y: 500, width: 50, height: 50 })], 100);
    assert.equal(moved!.trackId, 2);
  });

  it('smooths probabilities so one odd frame does not flip the label', () => {
    const tracker = new FaceTracker({ smoothingTauMs: 400 });
    const box = { x: 100, y: 100, width: 80, height: 100 };
    for (let t = 0; t <= 1000; t += 200) tracker.update([face(box, scores(3))], t); // happy
    const [odd] = tracker.update([face(box, scores(4))], 1200); // one sad frame
    assert.equal(odd!.emotions.sad, scores(4).sad);
    assert.equal(odd!.dominant, 'happy');
    assert.ok(odd!.smoothed.sad > scores(3).sad && odd!.smoothed.sad < 0.7);
    assert.ok(Math.abs(sum(odd!.smoothed) - 1) < 1e-9);
    let last = odd!;
    for (let t = 1400; t <= 3000; t += 200) last = tracker.update([face(box, scores(4))], t)[0]!;
    assert.equal(last.dominant, 'sad');
  });

  it('keeps the shown label while two scores stay close, switches after a clear lead held for the dwell time, and abstains on a first sample', () => {
    const tracker = new FaceTracker({ smoothingTauMs: 0 }); // no smoothing: the label rules alone
    const box = { x: 100, y: 100, width: 80, height: 100 };
    const close = (happy: number): EmotionScores => scoresFromArray([0.02, 0.02, 0.02, happy, 0.9 - happy, 0.02, 0.02]);
    const [first] = tracker.update([face(box, close(0.46))], 0);
    assert.equal(first!.uncertain, true, 'one sample: no label');
    const labels: string[] = [];
    // happy and sad within 0.04 of each other, the leader alternating every frame: no flicker.
    for (let t = 200; t <= 2000; t += 200) {
      const [f] = tracker.update([face(box, close(t % 400 === 0 ? 0.47 : 0.43))], t);
      labels.push(f!.dominant);
      assert.equal(f!.uncertain, false);
    }
    assert.equal(new Set(labels).size, 1, labels.join(','));
    // sad takes a clear lead: it shows once it has led for the dwell time, not on its first frame.
    const shown = labels[0]!;
    const other = shown === 'happy' ? 0.2 : 0.7;
    const [lead] = tracker.update([face(box, close(other))], 2200);
    assert.equal(lead!.dominant, shown === 'happy' ? 'sad' : 'happy', 'a clear lead after a long dwell switches at once');
    const [back] = tracker.update([face(box, close(1 - other - 0.1))], 2400);
    assert.equal(back!.dominant, lead!.dominant, 'a switch back within the dwell time waits');
    // A low top score: the label stays, flagged uncertain.
    const [flat] = tracker.update([face(box, scoresFromArray([0.14, 0.14, 0.14, 0.16, 0.14, 0.14, 0.14]))], 3400);
    assert.equal(flat!.uncertain, true);
  });
});

describe('EmaSmoother', () => {
  it('starts at the first sample, moves by 1 - exp(-dt/tau), and stays a distribution', () => {
    const smoother = new EmaSmoother(100);
    assert.deepEqual(smoother.update(scores(0), 0), scores(0));
    const next = smoother.update(scores(1), 100);
    const alpha = 1 - Math.exp(-1);
    assert.ok(Math.abs(next.disgust - (scores(0).disgust + alpha * (0.7 - scores(0).disgust))) < 1e-12);
    assert.ok(Math.abs(sum(next) - 1) < 1e-12);
  });

  it('with tau 0 returns the raw scores', () => {
    const smoother = new EmaSmoother(0);
    smoother.update(scores(0), 0);
    assert.deepEqual(smoother.update(scores(5), 10), scores(5));
  });
});
