/**
 * Headless Debian Chromium for the page tests: the launch flags (fake camera, timers that keep
 * running in background pages), pages that record uncaught errors and CSP violations, screenshots,
 * and failures that say what the page showed.
 */
import path from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';

export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

export const BASE_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--use-fake-device-for-media-stream',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  // Keep timers running in pages that are not in front.
  '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding',
  '--disable-backgrounding-occluded-windows',
];

/** The flags that give a page a fake camera playing `y4m` and allow it without a prompt. */
export const fakeCamera = (y4m: string): string[] => ['--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${y4m}`];

export class BrowserPages {
  /** uncaught page errors and Content-Security-Policy violations, from every page made here */
  readonly errors: string[] = [];
  readonly #contexts: BrowserContext[] = [];
  readonly #artifacts: string;
  /** ids of elements whose text a failure reports */
  readonly #stateIds: string[];

  constructor(artifacts: string, stateIds: string[]) {
    this.#artifacts = artifacts;
    this.#stateIds = stateIds;
  }

  async newPage(browser: Browser, viewport = { width: 1280, height: 800 }): Promise<Page> {
    const context = await browser.newContext({ viewport, deviceScaleFactor: 1 });
    this.#contexts.push(context);
    // Generous: the suite shares 2 cores with other work.
    context.setDefaultTimeout(120_000);
    context.setDefaultNavigationTimeout(120_000);
    const page = await context.newPage();
    page.on('pageerror', (error) => this.errors.push(error.message));
    // The pages must work under the server's Content-Security-Policy: a blocked script, style or connection is a failure.
    page.on('console', (message) => {
      if (message.type() === 'error' && /Content.Security.Policy/i.test(message.text())) this.errors.push(message.text());
    });
    return page;
  }

  async shot(page: Page, name: string): Promise<void> {
    await page.screenshot({ path: path.join(this.#artifacts, `${name}.png`), fullPage: true });
  }

  /** On failure: a screenshot and the page's own state, to see what went wrong. */
  async diagnosed<T>(page: Page, name: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      await this.shot(page, `FAILED-${name}`).catch(() => undefined);
      const state = await page
        .evaluate((ids) => ids.map((id) => `${id}=${document.getElementById(id)?.textContent ?? ''}`).join(' '), this.#stateIds)
        .catch(() => 'page unavailable');
      throw new Error(`${(error as Error).message}\n  page state: ${state}`);
    }
  }

  async closeAll(): Promise<void> {
    for (const context of this.#contexts) await context.close().catch(() => undefined);
  }
}
