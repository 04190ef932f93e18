/**
 * The small "API key" form both pages show when the server wants a credential: `ask(reason)`
 * shows it with the reason and resolves with the key the user submits (not `prompt()`: the form is
 * part of the page, works with the keyboard and screen readers, and can be cancelled).
 */
import { byId } from './dom.ts';

export class KeyForm {
  readonly root: HTMLElement;
  readonly #form: HTMLFormElement;
  readonly #input: HTMLInputElement;
  readonly #reason: HTMLElement;
  #pending: { resolve(key: string): void; reject(error: Error): void } | undefined;

  /** Needs #key-panel holding #key-form (with #api-key) and #key-reason. */
  constructor() {
    this.root = byId('key-panel');
    this.#form = byId<HTMLFormElement>('key-form');
    this.#input = byId<HTMLInputElement>('api-key');
    this.#reason = byId('key-reason');
    this.#form.addEventListener('submit', (event) => {
      event.preventDefault();
      const key = this.#input.value.trim();
      if (!key) {
        this.#input.focus();
        return;
      }
      this.#input.value = '';
      this.hide();
      const pending = this.#pending;
      this.#pending = undefined;
      pending?.resolve(key);
    });
  }

  get open(): boolean {
    return !this.root.hidden;
  }

  /** Shows the form with `reason`; resolves with the submitted key. A second call while open shares the first's answer. */
  ask(reason: string): Promise<string> {
    this.#reason.textContent = reason;
    this.root.hidden = false;
    document.body.dataset.needsKey = 'true';
    this.#input.focus();
    if (!this.#pending) {
      return new Promise<string>((resolve, reject) => {
        this.#pending = { resolve, reject };
      });
    }
    const pending = this.#pending;
    return new Promise<string>((resolve, reject) => {
      this.#pending = {
        resolve: (key) => {
          pending.resolve(key);
          resolve(key);
        },
        reject: (error) => {
          pending.reject(error);
          reject(error);
        },
      };
    });
  }

  /** Closes the form; a pending `ask` rejects with `reason`. */
  cancel(reason: Error): void {
    this.hide();
    const pending = this.#pending;
    this.#pending = undefined;
    pending?.reject(reason);
  }

  hide(): void {
    this.root.hidden = true;
    document.body.dataset.needsKey = 'false';
  }
}
