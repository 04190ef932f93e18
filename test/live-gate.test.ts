import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LatestFrameGate } from '../server/live/backpressure.ts';
import { ParticipantTimelines } from '../server/live/timeline.ts';
import { scoresFromArray } from '../contract/emotions.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
/** Polls until the condition holds (timers run late on a loaded machine, so no fixed sleeps). */
async function until(condition: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached');
    await sleep(5);
  }
}

describe('LatestFrameGate', () => {
  it('keeps one frame in flight and one waiting; newer frames replace the waiting one', async () => {
    const processed: number[] = [];
    const dropped: [number, string][] = [];
    const gate = new LatestFrameGate<number>(
      async (n) => {
        await sleep(20);
        processed.push(n);
      },
      (n, reason) => dropped.push([n, reason]),
    );
    for (let n = 1; n <= 5; n++) gate.offer(n);
    assert.equal(gate.inFlight, true);
    assert.equal(gate.waiting, true);
    await until(() => processed.length === 2 && !gate.inFlight);
    assert.deepEqual(processed, [1, 5]);
    assert.deepEqual(dropped, [[2, 'superseded'], [3, 'superseded'], [4, 'superseded']]);
  });

  it('drops the waiting frame on close and keeps going after a failed frame', async () => {
    const processed: number[] = [];
    const dropped: [number, string][] = [];
    const gate = new LatestFrameGate<number>(
      async (n) => {
        await sleep(10);
        if (n === 1) throw new Error('boom');
        processed.push(n);
      },
      (n, reason) => dropped.push([n, reason]),
    );
    gate.offer(1);
    gate.offer(2);
    await until(() => processed.length === 1 && !gate.inFlight);
    assert.deepEqual(processed, [2]);
    gate.offer(3);
    gate.offer(4);
    gate.close();
    gate.offer(5);
    await until(() => processed.length === 2 && !gate.inFlight);
    assert.deepEqual(processed, [2, 3]);
    assert.deepEqual(dropped, [[4, 'disconnected'], [5, 'disconnected']]);
  });

  it('idle() resolves once the frame in flight is done; closing for shutdown answers the waiting and later frames shutting_down', async () => {
    const processed: number[] = [];
    const dropped: [number, string][] = [];
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const gate = new LatestFrameGate<number>(
      async (n) => {
        await held;
        processed.push(n);
      },
      (n, reason) => dropped.push([n, reason]),
    );
    let idleNow = false;
    await gate.idle().then(() => (idleNow = true));
    assert.equal(idleNow, true, 'an unused gate is idle at once');
    gate.offer(1);
    gate.offer(2);
    let idle = false;
    const idlePromise = gate.idle().then(() => (idle = true));
    gate.close('shutting_down');
    gate.offer(3);
    gate.close(); // a disconnect afterwards keeps the first reason
    gate.offer(4);
    assert.deepEqual(dropped, [[2, 'shutting_down'], [3, 'shutting_down'], [4, 'shutting_down']]);
    await sleep(20);
    assert.equal(idle, false, 'idle before the frame in flight finished');
    release();
    await idlePromise;
    assert.deepEqual(processed, [1]);
    assert.equal(gate.inFlight, false);
  });
});

describe('ParticipantTimelines', () => {
  const s = scoresFromArray([0.1, 0.1, 0.1, 0.4, 0.1, 0.1, 0.1]);
  const faceOf = (trackId: number) => ({ trackId, box: { x: 0, y: 0, width: 10, height: 10 }, score: 1, emotions: s, dominant: 'happy' as const, smoothed: s, origin: 'detection' as const, uncertain: false });

  it('keeps the last maxSamples samples per track and the most recently seen maxTracks tracks', () => {
    const timelines = new ParticipantTimelines(3, 2);
    for (let seq = 1; seq <= 5; seq++) timelines.add([faceOf(1)], seq, seq * 100);
    timelines.add([faceOf(2)], 6, 600);
    timelines.add([faceOf(1)], 7, 700);
    timelines.add([faceOf(3)], 8, 800); // track 2 is now the stalest and goes
    const snapshot = timelines.snapshot();
    assert.deepEqual(snapshot.map((t) => t.trackId), [1, 3]);
    assert.deepEqual(snapshot[0]!.samples.map((x) => x.seq), [4, 5, 7]);
    assert.deepEqual(timelines.snapshot(450)[0]!.samples.map((x) => x.seq), [5, 7]);
  });
});
