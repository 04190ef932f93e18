/**
 * The browser pages against a real server with API keys (MOODWIRE_API_KEYS), in Debian chromium
 * via playwright-core with the fake camera of client-browser.test.ts: the live page without a
 * credential asks for an invite or a key; an invite is refused for another session; an invite
 * link joins its session and streams, leaves the address bar and survives a reload; the page makes
 * an observer invite whose page watches without sending frames; the upload page asks for a key,
 * refuses a wrong one, and analyses a short video. Screenshots go to test-artifacts/client-auth/.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { pino } from 'pino';
import { type Browser, chromium, type Page } from 'playwright-core';
import type { Invite } from '../contract/http.ts';
import { repoRoot } from '../server/config.ts';
import { type RunningServer, startServer } from '../server/server.ts';
import { BASE_FLAGS, BrowserPages, CHROMIUM, fakeCamera } from './browser-support.ts';
import { testConfig } from './live-support.ts';
import { testBinaries } from './video-support.ts';

const KEY = 'browser-test-key-aaaaaaaaaaaa';
const SECRET = 'a browser test secret of at least thirty-two characters';
const groupsPan = path.resolve(repoRoot, '../shared/media/groups-pan.mp4');
const artifacts = path.join(repoRoot, 'test-artifacts/client-auth');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'moodwire-client-auth-'));
const y4m = path.join(tmp, 'groups-pan.y4m');
const shortClip = path.join(tmp, 'groups-pan-4s.mp4');

let server: RunningServer;
let browser: Browser;
const pages = new BrowserPages(artifacts, ['connection', 'sent', 'message', 'key-reason', 'stage-hint', 'phase']);
const pageErrors = pages.errors;
const newPage = (): Promise<Page> => pages.newPage(browser);
const shot = (page: Page, name: string): Promise<void> => pages.shot(page, name);
const diagnosed = <T>(page: Page, name: string, run: () => Promise<T>): Promise<T> => pages.diagnosed(page, name, run);

const maxOwnPoints = (page: Page): Promise<number> =>
  page.evaluate(() => Math.max(0, ...[...document.querySelectorAll<HTMLElement>('#own-timelines [data-points]')].map((e) => Number(e.dataset.points))));

describe('browser pages with API keys (chromium, real server)', { timeout: 600_000 }, () => {
  before(async () => {
    fs.mkdirSync(artifacts, { recursive: true });
    execFileSync(process.execPath, ['--import', 'tsx', path.join(repoRoot, 'scripts/build-client.ts')], { cwd: repoRoot, stdio: 'pipe' });
    const { ffmpegPath } = testBinaries();
    execFileSync(ffmpegPath, ['-v', 'error', '-y', '-i', groupsPan, '-t', '5', '-vf', 'scale=640:360', '-pix_fmt', 'yuv420p', y4m]);
    // 4 s of the pan for the upload page (the whole clip is analysed in client-browser.test.ts).
    execFileSync(ffmpegPath, ['-v', 'error', '-y', '-i', groupsPan, '-t', '4', '-vf', 'scale=640:-2', '-an', '-c:v', 'libx264', '-preset', 'ultrafast', shortClip]);
    server = await startServer(
      testConfig({ WORKERS: '1', MOODWIRE_DATA_DIR: path.join(tmp, 'data'), VIDEO_SAMPLE_FPS: '2', MOODWIRE_API_KEYS: KEY, MOODWIRE_TOKEN_SECRET: SECRET }),
      pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' }),
    );
    browser = await chromium.launch({ executablePath: CHROMIUM, args: [...BASE_FLAGS, ...fakeCamera(y4m)] });
    await server.ready;
  });

  after(async () => {
    await pages.closeAll();
    await browser?.close();
    await server?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  const session = `auth-${Date.now().toString(36)}`;
  const makeInvite = async (sessionId: string, role: 'participant' | 'observer'): Promise<Invite> => {
    const res = await fetch(`${server.url}/api/v1/sessions/${sessionId}/invites`, {
      method: 'POST',
      headers: { Authorization: `Bearer ${KEY}`, 'Content-Type': 'application/json' },
      body: JSON.stringify({ role }),
    });
    assert.equal(res.status, 201);
    return (await res.json()) as Invite;
  };
  let alice: Page;

  it('the live page without a credential says it needs an invite link or an API key (and stops retrying)', async () => {
    const page = await newPage();
    await page.goto(`${server.url}/?session=${session}`);
    await page.waitForSelector('#key-panel:not([hidden])');
    assert.match((await page.textContent('#key-reason')) ?? '', /needs an invite link or an API key/);
    assert.equal(await page.getAttribute('#connection', 'data-state'), 'refused');
    assert.equal(await page.isVisible('#api-key'), true);
    await shot(page, 'live-needs-credential');
    // Refused, it does not spin in "reconnecting".
    await page.waitForTimeout(1500);
    assert.equal(await page.getAttribute('#connection', 'data-state'), 'refused');
    // A wrong key is refused with the server's reason, the right one connects.
    await page.fill('#api-key', 'not-the-key-xxxxxxxxxxxx');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /did not accept this API key/.test(document.getElementById('key-reason')?.textContent ?? ''));
    await page.fill('#api-key', KEY);
    await page.click('#key-form button[type="submit"]');
    await page.waitForSelector('#connection[data-state="connected"]');
    assert.equal(await page.isVisible('#key-panel'), false);
    await page.context().close();
  });

  it("an invite used for another session is refused at join with the server's reason", async () => {
    const invite = await makeInvite(`${session}-other`, 'participant');
    const page = await newPage();
    await page.goto(invite.url);
    await page.waitForSelector('#connection[data-state="connected"]');
    await page.fill('#session-id', session);
    await page.click('#join');
    await page.waitForFunction(() => /Could not join the session/.test(document.getElementById('message')?.textContent ?? ''));
    const message = (await page.textContent('#message')) ?? '';
    assert.match(message, /another session/);
    assert.match(message, new RegExp(`The invite link you opened is for the session "${session}-other"`));
    assert.equal(await page.getAttribute('body', 'data-joined'), 'false');
    await page.context().close();
  });

  it('an invite link joins its session and streams; the token leaves the address bar; a reload still works', async () => {
    const invite = await makeInvite(session, 'participant');
    alice = await newPage();
    await alice.goto(invite.url);
    assert.equal(alice.url(), `${server.url}/?session=${session}`, 'the token is gone from the address bar');
    assert.ok(!alice.url().includes(invite.token));
    assert.equal(await alice.inputValue('#session-id'), session);
    await alice.waitForSelector('#connection[data-state="connected"]');
    await alice.fill('#name', 'Alice');
    await alice.click('#join');
    await alice.waitForSelector('body[data-joined="true"][data-role="participant"]');
    await diagnosed(alice, 'invite-stream', async () => {
      await alice.waitForFunction(() => Number(document.getElementById('video')?.dataset.faces ?? 0) >= 1, null, { timeout: 180_000 });
      await alice.waitForSelector('#faces-now li[data-dominant]', { timeout: 120_000 });
      await alice.waitForSelector('#own-timelines figure[data-points]');
    });
    assert.equal(await alice.isVisible('#invite-box'), true, 'a participant may invite others');
    await shot(alice, 'live-invited');

    await alice.reload();
    assert.ok(!alice.url().includes('invite'), 'still no token in the address bar after a reload');
    await alice.waitForSelector('#connection[data-state="connected"]');
    assert.equal(await alice.isVisible('#key-panel'), false, 'the invite kept in the tab still opens the connection');
    await alice.click('#join');
    await alice.waitForSelector('body[data-joined="true"]');
    await diagnosed(alice, 'reload-stream', () => alice.waitForFunction(() => Number(document.getElementById('sent')?.textContent) >= 3, null, { timeout: 120_000 }));
  });

  it("the page invites an observer, whose page watches the participant's faces and timeline without a camera or frames", async () => {
    await alice.selectOption('#invite-role', 'observer');
    await alice.click('#create-invite');
    await alice.waitForSelector('#invite-result:not([hidden])');
    const link = await alice.inputValue('#invite-link');
    assert.match(link, new RegExp(`^${server.url}/\\?session=${session}#invite=[\\w-]+\\.[\\w-]+\\.[\\w-]+$`));
    assert.match((await alice.textContent('#invite-expiry')) ?? '', /observer/);
    await alice.click('#copy-invite');
    await alice.waitForSelector('#message:not([hidden])');
    await shot(alice, 'live-invite-made');

    // Every event the observer's socket sends, seen on the server.
    const observerEvents: string[] = [];
    server.io.on('connection', (socket) => {
      if (socket.data.caller?.invite?.role === 'observer') socket.onAny((event: string) => observerEvents.push(event));
    });
    const watcher = await newPage();
    await watcher.goto(link);
    assert.ok(!watcher.url().includes('#invite'));
    await watcher.waitForSelector('#connection[data-state="connected"]');
    assert.equal(await watcher.textContent('#join'), 'Watch session');
    await watcher.fill('#name', 'Olga');
    await watcher.click('#join');
    await watcher.waitForSelector('body[data-joined="true"][data-role="observer"]');
    assert.match((await watcher.textContent('#role-note')) ?? '', /Watching as observer/);
    assert.equal(await watcher.isVisible('#invite-box'), false, 'observers cannot invite');
    await diagnosed(watcher, 'observer-watch', () =>
      watcher.waitForFunction(() => {
        const item = [...document.querySelectorAll<HTMLElement>('#participants li')].find((li) => li.textContent?.includes('Alice'));
        return item && Number(item.dataset.faces) >= 1 && Number(item.dataset.points) >= 3;
      }, null, { timeout: 180_000 }),
    );
    await alice.locator('#participants li[data-present="true"]', { hasText: 'Olga' }).waitFor();
    assert.equal(await watcher.textContent('#sent'), '0');
    assert.equal(await watcher.evaluate(() => (document.getElementById('video') as HTMLVideoElement).srcObject), null, 'no camera');
    assert.ok(observerEvents.includes('session:join'), `the observer's socket was watched: ${observerEvents.join(',')}`);
    assert.ok(!observerEvents.includes('frame'), `the observer sent no frame: ${observerEvents.join(',')}`);
    await shot(watcher, 'live-observer');
    for (const page of [watcher, alice]) await page.context().close();
  });

  it('the upload page asks for the API key, refuses a wrong one, then analyses the video and downloads with it', async () => {
    const page = await newPage();
    await page.goto(`${server.url}/upload.html`);
    await page.setInputFiles('#file', shortClip);
    await page.waitForSelector('#key-panel:not([hidden])');
    assert.equal(await page.getAttribute('body', 'data-state'), 'needs-key');
    assert.match((await page.textContent('#key-reason')) ?? '', /needs an API key/);
    await shot(page, 'upload-needs-key');
    await page.fill('#api-key', 'wrong-key-xxxxxxxxxxxxxx');
    await page.keyboard.press('Enter');
    await page.waitForFunction(() => /did not accept that API key/.test(document.getElementById('key-reason')?.textContent ?? ''));
    await page.fill('#api-key', KEY);
    await page.keyboard.press('Enter');
    await diagnosed(page, 'upload-auth', () => page.waitForSelector('body[data-state="done"]', { timeout: 300_000 }));
    assert.equal(await page.isVisible('#key-panel'), false);
    assert.ok((await page.locator('#tracks article[data-track-id]').count()) >= 1);
    assert.match((await page.textContent('#results-summary')) ?? '', /in 4\.\d s of video/);
    // A download link cannot carry the key: the page fetches the file with it.
    const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download-csv')]);
    const csv = fs.readFileSync((await download.path())!, 'utf8');
    assert.match(csv.split('\n')[0] ?? '', /^track_id,t,/);
    assert.ok(csv.split('\n').length > 3, 'CSV has rows');
    await shot(page, 'upload-done');
    assert.deepEqual(pageErrors, [], 'no uncaught errors or CSP violations in the pages');
  });
});
