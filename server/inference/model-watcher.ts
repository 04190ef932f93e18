import { EventEmitter } from 'node:events';
import { type FSWatcher, watch } from 'node:fs';
import { stat } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';

/**
 * Notices a new emotion model in MODEL_DIR (the trainer replaces model.json, weights and
 * card.json by rename) and asks for a reload. fs.watch reacts at once; a slow poll of the files'
 * mtimes and sizes catches what watch misses. Changes are debounced (a model is several files)
 * and reloads never overlap. A failed reload is logged and the old model stays.
 * Emits 'reloaded' (version) and 'reload-failed' (error).
 */
const MODEL_FILES = ['model.json', 'card.json'];

export class ModelWatcher extends EventEmitter {
  readonly #dir: string;
  readonly #reload: (dir: string) => Promise<string>;
  readonly #logger: Logger;
  readonly #debounceMs: number;
  #watcher: FSWatcher | undefined;
  #poll: NodeJS.Timeout | undefined;
  #debounce: NodeJS.Timeout | undefined;
  #loadedSignature = '';
  #running: Promise<void> | undefined;
  #again = false;

  constructor(options: { dir: string; pollMs: number; debounceMs?: number; logger: Logger; reload: (dir: string) => Promise<string> }) {
    super();
    this.#dir = options.dir;
    this.#reload = options.reload;
    this.#logger = options.logger;
    this.#debounceMs = options.debounceMs ?? 300;
    // The poll checks directly: routing it through the debounce would keep postponing the check.
    this.#poll = setInterval(() => void this.#check(), options.pollMs);
    this.#poll.unref();
  }

  /** Records the files of the model already loaded, then starts watching. */
  async start(): Promise<void> {
    this.#loadedSignature = await this.#signature();
    try {
      this.#watcher = watch(this.#dir, () => this.#changed());
      this.#watcher.on('error', (error) => this.#logger.warn({ err: error }, 'model folder watch failed; polling only'));
    } catch (error) {
      this.#logger.warn({ err: error }, 'cannot watch the model folder; polling only');
    }
  }

  close(): void {
    this.#watcher?.close();
    clearInterval(this.#poll);
    clearTimeout(this.#debounce);
  }

  async #signature(): Promise<string> {
    const parts = await Promise.all(
      MODEL_FILES.map(async (file) => {
        try {
          const s = await stat(path.join(this.#dir, file));
          return `${file}:${s.mtimeMs}:${s.size}`;
        } catch {
          return `${file}:missing`;
        }
      }),
    );
    return parts.join('|');
  }

  #changed(): void {
    clearTimeout(this.#debounce);
    this.#debounce = setTimeout(() => void this.#check(), this.#debounceMs);
  }

  async #check(): Promise<void> {
    if (this.#running) {
      this.#again = true;
      return;
    }
    this.#running = this.#checkOnce().finally(() => {
      this.#running = undefined;
      if (this.#again) {
        this.#again = false;
        this.#changed();
      }
    });
    await this.#running;
  }

  async #checkOnce(): Promise<void> {
    const signature = await this.#signature();
    if (signature === this.#loadedSignature || signature.includes('missing')) return;
    this.#logger.info({ dir: this.#dir }, 'emotion model changed on disk, reloading');
    try {
      const version = await this.#reload(this.#dir);
      this.#loadedSignature = signature;
      this.#logger.info({ modelVersion: version }, 'emotion model reloaded');
      this.emit('reloaded', version);
    } catch (error) {
      // Remember the broken files so they are not retried every poll; a newer write changes the signature.
      this.#loadedSignature = signature;
      this.#logger.error({ err: error }, 'new emotion model failed to load; keeping the old one');
      this.emit('reload-failed', error);
    }
  }
}
