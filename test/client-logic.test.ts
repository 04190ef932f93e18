/** The browser client's pure logic, in Node: overlay geometry, frame pacing, bounded timelines, roster, credentials. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { FramePacer } from '../client/src/shared/frame-pacer.ts';
import { captureSize, containRect, mapBox } from '../client/src/shared/geometry.ts';
import { Roster } from '../client/src/shared/roster.ts';
import { isValidSessionId, newSessionId, sessionIdFromUrl, urlWithSession } from '../client/src/shared/session-id.ts';
import { TimelineBuffer } from '../client/src/shared/timeline-buffer.ts';
import { API_KEY_STORAGE_KEY, Credentials, INVITE_STORAGE_KEY, inviteClaims, type KeyValueStore, takeInviteFromUrl } from '../client/src/shared/credentials.ts';
import { connectRefusal } from '../client/src/shared/socket.ts';
import { InviteSigner } from '../server/security/invites.ts';
import { EMOTIONS, type EmotionScores } from '../contract/emotions.ts';
import type { Face } from '../contract/socket.ts';

function scores(top: (typeof EMOTIONS)[number]): EmotionScores {
  return Object.fromEntries(EMOTIONS.map((e) => [e, e === top ? 0.7 : 0.05])) as EmotionScores;
}

function face(trackId: number, x = 10): Face {
  return { trackId, box: { x, y: 20, width: 50, height: 60 }, score: 0.9, emotions: scores('happy'), dominant: 'happy', smoothed: scores('happy'), origin: 'detection', uncertain: false };
}

describe('overlay geometry (object-fit: contain)', () => {
  it('letterboxes a wide video in a tall box and pillarboxes it in a wide one', () => {
    assert.deepEqual(containRect({ width: 400, height: 400 }, { width: 640, height: 360 }), { x: 0, y: 87.5, width: 400, height: 225 });
    assert.deepEqual(containRect({ width: 1000, height: 360 }, { width: 640, height: 360 }), { x: 180, y: 0, width: 640, height: 360 });
    assert.deepEqual(containRect({ width: 0, height: 300 }, { width: 640, height: 360 }), { x: 0, y: 0, width: 0, height: 0 });
  });

  it('maps a source-pixel box onto the picture at any container size', () => {
    const frame = { width: 640, height: 360 };
    const box = { x: 320, y: 180, width: 64, height: 36 };
    for (const container of [{ width: 320, height: 180 }, { width: 390, height: 844 }, { width: 1920, height: 600 }]) {
      const picture = containRect(container, frame);
      const mapped = mapBox(box, frame, picture);
      // The box's top-left is the picture's centre, and it keeps a tenth of the picture's size.
      assert.ok(Math.abs(mapped.x - (picture.x + picture.width / 2)) < 1e-9);
      assert.ok(Math.abs(mapped.y - (picture.y + picture.height / 2)) < 1e-9);
      assert.ok(Math.abs(mapped.width - picture.width / 10) < 1e-9);
      assert.ok(Math.abs(mapped.height - picture.height / 10) < 1e-9);
      // Inside the container.
      assert.ok(mapped.x >= 0 && mapped.y >= 0 && mapped.x + mapped.width <= container.width + 1e-9 && mapped.y + mapped.height <= container.height + 1e-9);
    }
  });

  it('uses the analysed frame size, not the video size, for the boxes (a downscaled capture)', () => {
    const picture = containRect({ width: 1280, height: 720 }, { width: 1280, height: 720 });
    const mapped = mapBox({ x: 100, y: 50, width: 40, height: 40 }, { width: 640, height: 360 }, picture);
    assert.deepEqual(mapped, { x: 200, y: 100, width: 80, height: 80 });
  });

  it('mirrors x for a selfie view', () => {
    const picture = { x: 0, y: 0, width: 640, height: 360 };
    const mapped = mapBox({ x: 0, y: 0, width: 100, height: 50 }, { width: 640, height: 360 }, picture, true);
    assert.equal(mapped.x, 540);
    assert.equal(mapped.width, 100);
  });

  it('caps the capture size at the longer side and keeps the aspect ratio', () => {
    assert.deepEqual(captureSize({ width: 1920, height: 1080 }, 640), { width: 640, height: 360 });
    assert.deepEqual(captureSize({ width: 480, height: 640 }, 640), { width: 480, height: 640 });
    assert.deepEqual(captureSize({ width: 1080, height: 1920 }, 640), { width: 360, height: 640 });
  });
});

describe('frame pacer', () => {
  it('never allows a second frame while one is unacknowledged', () => {
    const pacer = new FramePacer();
    const seq = pacer.begin(0);
    assert.equal(pacer.delayUntilNext(10_000), Number.POSITIVE_INFINITY);
    assert.throws(() => pacer.begin(10_000), /still waiting/);
    pacer.complete(seq, 50, true);
    assert.ok(Number.isFinite(pacer.delayUntilNext(50)));
  });

  it('follows the round trip: slow answers lower the rate and the JPEG quality, fast ones raise them', () => {
    const pacer = new FramePacer({ maxFps: 10, minFps: 1 });
    let now = 0;
    for (let i = 0; i < 20; i += 1) {
      const seq = pacer.begin(now);
      now += 600; // a slow server
      pacer.complete(seq, now, true);
      now += pacer.delayUntilNext(now);
    }
    const slow = { ...pacer.stats };
    assert.ok(slow.rttMs! > 550 && slow.rttMs! <= 600, `smoothed rtt ${slow.rttMs}`);
    assert.ok(slow.intervalMs >= 600, `interval ${slow.intervalMs}`);
    assert.equal(slow.quality, 0.5);
    for (let i = 0; i < 40; i += 1) {
      const seq = pacer.begin(now);
      now += 30; // a fast one
      pacer.complete(seq, now, true);
      now += pacer.delayUntilNext(now);
    }
    assert.equal(pacer.stats.intervalMs, 100, 'capped at maxFps');
    assert.equal(pacer.stats.quality, 0.8);
    assert.equal(pacer.stats.sent, 60);
    assert.equal(pacer.stats.acknowledged, 60);
    assert.equal(pacer.stats.dropped, 0);
  });

  it('counts refused and unanswered frames as dropped and backs off after a lost ack', () => {
    const pacer = new FramePacer({ maxFps: 10, minFps: 1 });
    const a = pacer.begin(0);
    pacer.complete(a, 100, false);
    const b = pacer.begin(200);
    const before = pacer.stats.intervalMs;
    pacer.abandon(b);
    assert.equal(pacer.stats.dropped, 2);
    assert.equal(pacer.stats.intervalMs, Math.min(1000, before * 2));
    assert.equal(pacer.inFlight, false);
    // A late answer for an abandoned frame changes nothing.
    pacer.complete(b, 5000, true);
    assert.equal(pacer.stats.acknowledged, 0);
  });

  it('counts frames refused while the server loads apart from dropped ones', () => {
    const pacer = new FramePacer({ maxFps: 10 });
    pacer.complete(pacer.begin(0), 50, 'not_ready');
    pacer.complete(pacer.begin(200), 250, false);
    assert.deepEqual([pacer.stats.notReady, pacer.stats.dropped, pacer.stats.acknowledged], [1, 1, 0]);
  });
});

describe('timeline buffer', () => {
  it('keeps at most maxSamples per track and maxTracks tracks (least recently updated dropped)', () => {
    const buffer = new TimelineBuffer({ maxSamples: 5, maxTracks: 2 });
    for (let i = 0; i < 12; i += 1) buffer.add(1, 1000 + i * 100, scores('sad'), 'sad');
    assert.equal(buffer.tracks()[0]!.points.length, 5);
    const times = buffer.tracks()[0]!.points.map((p) => p.t);
    [0.7, 0.8, 0.9, 1.0, 1.1].forEach((t, i) => assert.ok(Math.abs(times[i]! - t) < 1e-9, `oldest samples dropped first: ${times.join(',')}`));
    buffer.add(2, 3000, scores('happy'), 'happy');
    buffer.add(1, 3100, scores('sad'), 'sad');
    buffer.add(3, 3200, scores('fear'), 'fear');
    assert.deepEqual(buffer.tracks().map((t) => t.trackId), [1, 3]);
    assert.equal(buffer.pointCount, 6 + 1 - 1);
  });

  it('measures time in seconds from the first sample', () => {
    const buffer = new TimelineBuffer();
    buffer.add(4, 10_000, scores('neutral'), 'neutral');
    buffer.add(4, 12_500, scores('neutral'), 'neutral');
    assert.deepEqual(buffer.tracks()[0]!.points.map((p) => p.t), [0, 2.5]);
  });
});

describe('participant roster', () => {
  it('learns participants from the join answer, presence events and emotions broadcasts', () => {
    const roster = new Roster();
    roster.reset([{ participantId: 'a', name: 'Ada' }]);
    roster.emotions({ participantId: 'b', seq: 1, ts: 1000, faces: [face(1), face(2, 200)] }, 1);
    assert.deepEqual(roster.list().map((p) => p.participantId), ['a', 'b']);
    assert.equal(roster.get('b')!.faces.length, 2);
    assert.equal(roster.get('b')!.timeline.size, 2);
    roster.joined({ participantId: 'b', name: 'Bo' });
    assert.equal(roster.get('b')!.name, 'Bo');
    roster.left({ participantId: 'a' });
    assert.equal(roster.get('a')!.present, false);
    assert.deepEqual(roster.list().map((p) => p.participantId), ['b', 'a'], 'present first');
  });

  it('ignores out-of-order broadcasts and stays bounded', () => {
    const roster = new Roster({ maxParticipants: 3 });
    roster.emotions({ participantId: 'x', seq: 5, ts: 5000, faces: [face(1)] }, 1);
    assert.equal(roster.emotions({ participantId: 'x', seq: 4, ts: 4000, faces: [] }, 2), undefined);
    assert.equal(roster.get('x')!.faces.length, 1);
    for (let i = 0; i < 10; i += 1) roster.emotions({ participantId: `p${i}`, seq: 1, ts: i, faces: [face(1)] }, 10 + i);
    assert.equal(roster.size, 3);
    assert.ok(roster.get('p9'));
  });
});

describe('session ids', () => {
  it('reads valid ids from the URL and refuses bad ones', () => {
    assert.equal(sessionIdFromUrl('http://h/?session=team-42'), 'team-42');
    assert.equal(sessionIdFromUrl('http://h/?session=bad%20id'), undefined);
    assert.equal(sessionIdFromUrl('http://h/'), undefined);
    assert.equal(new URL(urlWithSession('http://h/?x=1', 'abc')).searchParams.get('session'), 'abc');
    assert.equal(isValidSessionId('a'.repeat(65)), false);
  });

  it('makes new ids that the server accepts', () => {
    let seed = 0.1;
    const random = () => (seed = (seed * 9301 + 0.49297) % 1);
    for (let i = 0; i < 50; i += 1) assert.ok(isValidSessionId(newSessionId(random)));
  });
});

describe('camera errors', () => {
  it('tell a person who refused the camera to press Leave, then Join session (Join is disabled while joined)', async () => {
    const { openCamera } = await import('../client/src/live/camera.ts');
    const refusals = { NotAllowedError: 'refused', NotFoundError: 'No camera', NotReadableError: 'in use' };
    for (const [name, words] of Object.entries(refusals)) {
      Object.defineProperty(globalThis, 'navigator', {
        configurable: true,
        value: { mediaDevices: { getUserMedia: () => Promise.reject(Object.assign(new Error(name), { name })) } },
      });
      await assert.rejects(openCamera(), (error: Error) => error.message.includes(words) && error.message.includes('press "Leave" and "Join session" again'));
    }
  });
});

/** sessionStorage's part the pages use, over a Map. */
function mapStore(): KeyValueStore & { map: Map<string, string> } {
  const map = new Map<string, string>();
  return { map, getItem: (k) => map.get(k) ?? null, setItem: (k, v) => void map.set(k, v), removeItem: (k) => void map.delete(k) };
}

describe('credentials', () => {
  it('take the invite token out of the link fragment, keeping the rest of the address', () => {
    assert.deepEqual(takeInviteFromUrl('http://h:3000/?session=standup#invite=a.b.c'), { token: 'a.b.c', cleanHref: 'http://h:3000/?session=standup' });
    assert.deepEqual(takeInviteFromUrl('http://h/?session=s#x=1&invite=t.o.k'), { token: 't.o.k', cleanHref: 'http://h/?session=s#x=1' });
    assert.deepEqual(takeInviteFromUrl('http://h/?session=s'), { token: undefined, cleanHref: 'http://h/?session=s' });
    assert.deepEqual(takeInviteFromUrl('http://h/?session=s#section'), { token: undefined, cleanHref: 'http://h/?session=s#section' });
    // An empty token is no token, and still leaves the address bar.
    assert.deepEqual(takeInviteFromUrl('http://h/?session=s#invite='), { token: undefined, cleanHref: 'http://h/?session=s' });
  });

  it("read an invite's session, role and expiry without verifying it (the server does), and nothing from other strings", async () => {
    const signer = new InviteSigner(new TextEncoder().encode('a test secret of at least thirty-two characters'));
    const { token, expiresAt } = await signer.sign('team_42', 'observer', 600);
    assert.deepEqual(inviteClaims(token), { sessionId: 'team_42', role: 'observer', expiresAt });
    for (const bad of ['an-api-key', 'a.b.c', `x.${Buffer.from('{"sub":"s","role":"admin","exp":1}').toString('base64url')}.y`, '..']) {
      assert.equal(inviteClaims(bad), undefined, bad);
    }
  });

  it('send the API key if the user gave one, else the invite, else nothing; keep both in the tab storage', async () => {
    const store = mapStore();
    const credentials = new Credentials(store);
    assert.equal(credentials.credential, undefined);
    assert.deepEqual(credentials.authHeaders(), {});
    const signer = new InviteSigner(new TextEncoder().encode('a test secret of at least thirty-two characters'));
    const { token } = await signer.sign('s1', 'participant', 600);
    credentials.setInvite(token);
    assert.deepEqual(credentials.authHeaders(), { Authorization: `Bearer ${token}` });
    assert.equal(credentials.inviteClaims?.role, 'participant');
    credentials.setApiKey('  key-1  ');
    assert.deepEqual(credentials.authHeaders(), { Authorization: 'Bearer key-1' });
    // A new page of the same tab (a reload) finds both.
    const reloaded = new Credentials(store);
    assert.equal(reloaded.apiKey, 'key-1');
    assert.equal(reloaded.invite, token);
    assert.deepEqual([...store.map.keys()].sort(), [API_KEY_STORAGE_KEY, INVITE_STORAGE_KEY].sort());
    reloaded.setApiKey(undefined);
    assert.equal(reloaded.credential, token);
    // An expired invite is dropped; a valid one is kept.
    assert.equal(reloaded.dropExpiredInvite(Date.now()), false);
    assert.equal(reloaded.dropExpiredInvite(Date.now() + 601_000), true);
    assert.equal(reloaded.credential, undefined);
    assert.equal(store.map.size, 0);
  });

  it('still work for the page when storage throws (disabled or full)', () => {
    const broken: KeyValueStore = {
      getItem: () => {
        throw new Error('SecurityError');
      },
      setItem: () => {
        throw new Error('QuotaExceededError');
      },
      removeItem: () => {
        throw new Error('SecurityError');
      },
    };
    const credentials = new Credentials(broken);
    credentials.setApiKey('k');
    assert.equal(credentials.apiKey, 'k');
    credentials.setApiKey(undefined);
    assert.equal(credentials.apiKey, undefined);
  });

  it("tell a server's handshake refusal from a network error", () => {
    assert.deepEqual(connectRefusal(Object.assign(new Error('send an invite token or an API key'), { data: { code: 'unauthorized', message: 'send an invite token or an API key' } })), {
      code: 'unauthorized',
      message: 'send an invite token or an API key',
    });
    assert.equal(connectRefusal(new Error('websocket error')), undefined);
    assert.equal(connectRefusal(Object.assign(new Error('x'), { data: { code: 'teapot', message: 'x' } })), undefined);
    assert.equal(connectRefusal(undefined), undefined);
  });
});

describe('scene watch (live page)', () => {
  it('turns RGBA pixels into BT.601 grey levels, and a cut differs by more than the stale threshold', async () => {
    const { greyFromRgba, STALE_PICTURE_DIFFERENCE } = await import('../client/src/live/scene-watch.ts');
    const { thumbnailDifference } = await import('../contract/thumbnails.ts');
    assert.deepEqual([...greyFromRgba(new Uint8ClampedArray([255, 255, 255, 255, 0, 0, 0, 255, 255, 0, 0, 255]))], [255, 0, 76]);
    const dark = greyFromRgba(new Uint8ClampedArray(4 * 1024).fill(40));
    const light = greyFromRgba(new Uint8ClampedArray(4 * 1024).fill(120));
    assert.ok(thumbnailDifference(dark, light) > STALE_PICTURE_DIFFERENCE);
    assert.equal(thumbnailDifference(dark, dark), 0);
  });
});
