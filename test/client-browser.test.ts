/**
 * The browser client in a real browser (Debian chromium via playwright-core) against the real
 * server on port 0: the fake camera plays frames of ../shared/media/groups-pan.mp4 (a y4m made
 * with ffmpeg), the live page draws boxes and labels and its timelines grow, a second page in the
 * same session sees the first participant, the page reconnects by itself, the upload page analyses
 * the video to the end, and refusals (camera, file, server gone) show clear messages.
 * Screenshots go to test-artifacts/client/.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { type Browser, chromium, type Page } from 'playwright-core';
import { repoRoot } from '../server/config.ts';
import { type RunningServer, startServer } from '../server/server.ts';
import { EMOTION_COLORS } from '../client/src/shared/emotions.ts';
import { BASE_FLAGS, BrowserPages, CHROMIUM, fakeCamera } from './browser-support.ts';
import { testConfig } from './live-support.ts';
import { testBinaries } from './video-support.ts';

const groupsPan = path.resolve(repoRoot, '../shared/media/groups-pan.mp4');
const artifacts = path.join(repoRoot, 'test-artifacts/client');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moodwire-client-'));
const y4m = path.join(tmp, 'groups-pan.y4m');

let server: RunningServer;
let serverClosed = false;
let browser: Browser;
const pages = new BrowserPages(artifacts, ['connection', 'sent', 'dropped', 'rtt', 'fps', 'message', 'stage-hint']);
const pageErrors = pages.errors;
const newPage = (b: Browser, viewport?: { width: number; height: number }): Promise<Page> => pages.newPage(b, viewport);
const shot = (page: Page, name: string): Promise<void> => pages.shot(page, name);
const diagnosed = <T>(page: Page, name: string, run: () => Promise<T>): Promise<T> => pages.diagnosed(page, name, run);

const num = async (page: Page, selector: string, attribute: string): Promise<number> =>
  Number((await page.locator(selector).first().getAttribute(attribute)) ?? 'NaN');

/** Pixels of the overlay canvas drawn in one of the emotion colours (box outlines, labels, bars). */
async function overlayColouredPixels(page: Page): Promise<number> {
  return page.evaluate((colors) => {
    const canvas = document.getElementById('overlay') as HTMLCanvasElement;
    const data = canvas.getContext('2d')!.getImageData(0, 0, canvas.width, canvas.height).data;
    const rgb = colors.map((hex) => [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16)));
    let count = 0;
    for (let i = 0; i < data.length; i += 4) {
      if (data[i + 3]! < 250) continue;
      if (rgb.some(([r, g, b]) => Math.abs(data[i]! - r!) < 4 && Math.abs(data[i + 1]! - g!) < 4 && Math.abs(data[i + 2]! - b!) < 4)) count += 1;
    }
    return count;
  }, Object.values(EMOTION_COLORS));
}

describe('browser client (chromium, real server)', { timeout: 1_500_000 }, () => {
  before(async () => {
    fs.mkdirSync(artifacts, { recursive: true });
    execFileSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'scripts/build-client.ts')], { cwd: repoRoot, stdio: 'pipe' });
    // 5 s of the pan, 640x360, as the fake camera (chromium loops it).
    execFileSync(testBinaries().ffmpegPath, ['-v', 'error', '-y', '-i', groupsPan, '-t', '5', '-vf', 'scale=640:360', '-pix_fmt', 'yuv420p', y4m]);
    // One inference worker: starts faster on a busy machine and is enough for two pages.
    server = await startServer(
      testConfig({ WORKERS: '1', MOODWIRE_DATA_DIR: path.join(tmp, 'data'), VIDEO_SAMPLE_FPS: '3' }),
      pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    );
    await server.ready;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [...BASE_FLAGS, ...fakeCamera(y4m)],
    });
  });

  after(async () => {
    await pages.closeAll();
    await browser?.close();
    if (!serverClosed) await server?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  let alice: Page;
  let bob: Page;
  const session = `browser-${Date.now().toString(36)}`;

  it('live page: overlay boxes with emotion labels, a growing timeline, stats', async () => {
    alice = await newPage(browser);
    await alice.goto(`${server.url}/?session=${session}`);
    assert.equal(await alice.inputValue('#session-id'), session, 'the session comes from the URL');
    await alice.waitForSelector('#connection[data-state="connected"]');
    await alice.fill('#name', 'Alice');
    await alice.keyboard.press('Enter'); // the form submits from the keyboard
    await alice.waitForSelector('body[data-joined="true"]');
    // The pan shows 3-4 faces (detection quality is tested in live-server.test.ts).
    await diagnosed(alice, 'live-faces', () =>
      alice.waitForFunction(() => Number(document.getElementById('video')?.dataset.faces ?? 0) >= 1, null, { timeout: 180_000 }),
    );
    await alice.waitForSelector('#faces-now li[data-dominant]');
    const labels = await alice.locator('#faces-now li[data-dominant] .chip').allTextContents();
    assert.ok(labels.length >= 1);
    for (const label of labels) assert.match(label, /^(angry|disgust|fear|happy|sad|surprise|neutral) \d+%$/);
    const coloured = await overlayColouredPixels(alice);
    assert.ok(coloured > 500, `overlay has ${coloured} pixels drawn in emotion colours`);

    await alice.waitForSelector('#own-timelines figure[data-points]');
    const before = await num(alice, '#own-timelines figure[data-points]', 'data-points');
    await alice.waitForFunction(
      (n) => Math.max(...[...document.querySelectorAll<HTMLElement>('#own-timelines figure')].map((f) => Number(f.dataset.points))) >= n + 3,
      before,
      { timeout: 180_000 },
    );
    assert.ok(Number(await alice.textContent('#sent')) >= 3);
    assert.match((await alice.textContent('#rtt')) ?? '', /^\d+ ms$/);
    assert.match((await alice.textContent('#dropped')) ?? '', /^\d+$/);
    assert.equal(await alice.locator('#own-timelines canvas').first().evaluate((c) => (c as HTMLCanvasElement).width > 0), true);
    await shot(alice, 'live-laptop');
  });

  it('hides the boxes as soon as the picture changes under them (a cut in the camera clip), before the next answer', async () => {
    // The fake camera loops groups-pan (cuts at 4 s and 8 s); boxes of the shot before a cut are
    // taken down by the page's own picture check, not left up until the next answer replaces them.
    await alice.waitForFunction(() => Number(document.getElementById('overlay')?.dataset.staleHides ?? 0) >= 1, null, { timeout: 60_000 });
  });

  it('a second page in the same session sees the first participant and its timeline', async () => {
    bob = await newPage(browser, { width: 390, height: 844 }); // a phone-sized window
    await bob.goto(`${server.url}/?session=${session}`);
    await bob.fill('#name', 'Bob');
    await bob.click('#join');
    await bob.waitForSelector('body[data-joined="true"]');
    const aliceItem = bob.locator('#participants li[data-participant-id]', { hasText: 'Alice' });
    await aliceItem.waitFor();
    await diagnosed(bob, 'participants', () => bob.waitForFunction(() => {
      const item = [...document.querySelectorAll<HTMLElement>('#participants li')].find((li) => li.textContent?.includes('Alice'));
      return item && Number(item.dataset.faces) >= 1 && Number(item.dataset.points) >= 2;
    }, null, { timeout: 180_000 }));
    // The chart of the other participant says which of its faces it follows.
    assert.match((await aliceItem.locator('.chart-caption').textContent()) ?? '', /^Chart: face #\d+( \(out of view\))?$/);
    // A remote face shows its label, or "uncertain" while the server abstains (a track's first sample).
    assert.match((await aliceItem.locator('.chip').first().textContent()) ?? '', /^((angry|disgust|fear|happy|sad|surprise|neutral) \d+%|uncertain)$/);
    const points = Number(await aliceItem.getAttribute('data-points'));
    await bob.waitForFunction(
      (n) => Number([...document.querySelectorAll<HTMLElement>('#participants li')].find((li) => li.textContent?.includes('Alice'))?.dataset.points) > n,
      points,
      { timeout: 120_000 },
    );
    // And Alice sees Bob.
    await alice.locator('#participants li[data-present="true"]', { hasText: 'Bob' }).waitFor();
    // Nothing on the phone page is wider than the screen.
    const overflow = await bob.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `horizontal overflow ${overflow}px on a 390px screen`);
    await bob.waitForSelector('#faces-now li[data-dominant]', { timeout: 180_000 });
    await shot(bob, 'live-phone');
    await shot(alice, 'live-laptop-with-bob');
  });

  it('reconnects by itself when the connection drops, keeps streaming, and starts its own charts over (new membership, new track ids)', async () => {
    const ownPoints = (): Promise<number> =>
      alice.evaluate(() => Math.max(0, ...[...document.querySelectorAll<HTMLElement>('#own-timelines [data-points]')].map((e) => Number(e.dataset.points))));
    // Enough of the own chart first that starting over shows (the test before may end just after a
    // cut in the fake camera clip, with a new face at 1 point).
    await alice.waitForFunction(
      () => Math.max(0, ...[...document.querySelectorAll<HTMLElement>('#own-timelines [data-points]')].map((e) => Number(e.dataset.points))) >= 6,
      null,
      { timeout: 180_000 },
    );
    const pointsBefore = await ownPoints();
    const sentBefore = Number(await alice.textContent('#sent'));
    for (const socket of server.io.sockets.sockets.values()) socket.conn.close(); // transport lost
    await alice.waitForSelector('#connection[data-state="reconnecting"]', { timeout: 30_000 }).catch(() => undefined);
    await alice.waitForSelector('#connection[data-state="connected"]', { timeout: 120_000 });
    await alice.waitForSelector('body[data-joined="true"]');
    await alice.waitForFunction((n) => Number(document.getElementById('sent')?.textContent) >= n + 3, sentBefore, { timeout: 180_000 });
    const pointsAfter = await ownPoints();
    assert.ok(pointsAfter < pointsBefore, `own charts started over after the re-join: ${pointsAfter} points now, ${pointsBefore} before`);
  });

  it('upload page: rejects a file that is not a video with a clear message', async () => {
    const page = await newPage(browser);
    await page.goto(`${server.url}/upload.html`);
    const fake = path.join(tmp, 'notes.mp4');
    fs.writeFileSync(fake, 'plain text, not a video\n'.repeat(50));
    await page.setInputFiles('#file', fake);
    await page.waitForSelector('body[data-state="rejected"]', { timeout: 120_000 });
    const message = (await page.textContent('#message')) ?? '';
    assert.match(message, /rejected "notes\.mp4"/);
    await shot(page, 'upload-rejected');
    // A file that is not even named like a video is refused before uploading.
    const text = path.join(tmp, 'notes.txt');
    fs.writeFileSync(text, 'hello');
    await page.setInputFiles('#file', text);
    assert.match((await page.textContent('#message')) ?? '', /does not look like a video/);
  });

  it('upload page: uploads the video, follows the analysis to the end, charts each face, offers JSON and CSV', async () => {
    const page = await newPage(browser);
    await page.goto(`${server.url}/upload.html`);
    const states: string[] = [];
    await page.exposeFunction('recordState', (s: string) => states.push(s));
    await page.evaluate(() => {
      new MutationObserver(() => (window as unknown as { recordState(s: string): void }).recordState(`${document.body.dataset.state} ${(document.getElementById('analysis-progress') as HTMLProgressElement).value.toFixed(2)}`)).observe(document.body, { attributes: true, subtree: true, childList: true, characterData: true });
    });
    await page.selectOption('#fps', '2');
    await page.setInputFiles('#file', groupsPan);
    await page.waitForSelector('body[data-state="analysing"]', { timeout: 120_000 });
    await shot(page, 'upload-progress');
    await diagnosed(page, 'upload', () => page.waitForSelector('body[data-state="done"]', { timeout: 600_000 }));
    assert.ok(states.some((s) => /^analysing 0\.[1-9]/.test(s)), 'analysis progress was shown between 0 and 1');
    const cards = page.locator('#tracks article[data-track-id]');
    assert.ok((await cards.count()) >= 3, `${await cards.count()} face tracks shown`);
    assert.match((await page.textContent('#results-summary')) ?? '', /face tracks? in 12\.\d s of video/);
    const csvHref = await page.getAttribute('#download-csv', 'href');
    const jsonHref = await page.getAttribute('#download-json', 'href');
    const csv = await page.evaluate(async (href) => (await fetch(href!)).text(), csvHref);
    assert.ok(csv.split('\n').length > 10, 'CSV has rows');
    const json = await page.evaluate(async (href) => (await fetch(href!)).json(), jsonHref);
    assert.equal(json.status, 'done');
    assert.equal(json.sampledFps, 2, 'the rate chosen on the page');
    assert.equal(json.source.name, 'groups-pan.mp4');
    // The page asked for face pictures (its default): every card shows its face.
    await page.waitForFunction(() => {
      const imgs = [...document.querySelectorAll<HTMLImageElement>('#tracks article img.face-thumbnail')];
      return imgs.length === document.querySelectorAll('#tracks article[data-track-id]').length && imgs.every((i) => i.complete && i.naturalWidth === 96);
    }, null, { timeout: 60_000 });
    const summaryCsv = await page.evaluate(async (href) => (await fetch(href!)).text(), await page.getAttribute('#download-summary', 'href'));
    assert.equal(summaryCsv.trim().split('\n').length, (await cards.count()) + 1, 'one summary row per face track');
    // Downloads are named after the video; the page's URL names the job, so a reload comes back to it.
    assert.equal(await page.getAttribute('#download-csv', 'download'), 'groups-pan.emotions.csv');
    assert.equal(await page.getAttribute('#download-json', 'download'), 'groups-pan.emotions.json');
    const jobId = new URL(page.url()).searchParams.get('job');
    assert.match(jobId ?? '', /^[0-9a-f-]{36}$/);
    await shot(page, 'upload-done');
    const trackCards = await cards.count();
    await page.reload();
    await page.waitForSelector('body[data-state="done"]', { timeout: 120_000 });
    assert.equal(await page.locator('#tracks article[data-track-id]').count(), trackCards);
    // The caller's recent analyses list it, as a link that resumes it.
    await page.locator(`#recent-list li[data-job-id="${jobId}"][data-status="done"] a`).waitFor();
  });

  it('tells the user when the camera is refused (and still lets them watch)', async () => {
    // Without the fake-UI flag, and with prompts denied, the page gets NotAllowedError.
    const denying = await chromium.launch({ executablePath: CHROMIUM, args: [...BASE_FLAGS, '--deny-permission-prompts'] });
    try {
      const page = await denying.newPage();
      page.setDefaultTimeout(120_000);
      await page.goto(`${server.url}/?session=${session}`);
      await page.waitForSelector('#connection[data-state="connected"]');
      await page.click('#join');
      await page.waitForSelector('#message:not([hidden])', { timeout: 120_000 });
      assert.match((await page.textContent('#message')) ?? '', /Camera access was refused|No camera/);
      // The advice names buttons the page has enabled: Join is disabled while joined.
      assert.match((await page.textContent('#message')) ?? '', /press "Leave" and "Join session" again/);
      assert.equal(await page.isEnabled('#leave'), true);
      await page.waitForSelector('body[data-joined="true"]');
      await page.locator('#participants li[data-present="true"]', { hasText: 'Alice' }).waitFor({ timeout: 120_000 });
      await page.screenshot({ path: path.join(artifacts, 'camera-refused.png'), fullPage: true });
    } finally {
      await denying.close();
    }
  });

  it('says the server is unreachable when it goes away', async () => {
    serverClosed = true;
    await server.close();
    await alice.waitForSelector('#connection:is([data-state="reconnecting"], [data-state="offline"])', { timeout: 60_000 });
    await alice.waitForSelector('#message:not([hidden])', { timeout: 120_000 });
    assert.match((await alice.textContent('#message')) ?? '', /connection to the server was lost|cannot be reached/);
    await shot(alice, 'server-gone');
    assert.deepEqual(pageErrors, [], 'no uncaught errors in the pages');
  });
});
