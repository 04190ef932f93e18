/**
 * Exponential moving average of emotion probabilities over time, so labels don't flicker.
 * The weight of a new sample depends on the time since the last one (alpha = 1 - exp(-dt/tau)),
 * so the smoothing means the same at 5 fps and at 30 fps. The result still sums to 1.
 */
import { EMOTIONS, type EmotionScores } from '../../contract/emotions.ts';

export class EmaSmoother {
  readonly #tauMs: number;
  #state: EmotionScores | undefined;
  #lastMs = 0;

  constructor(tauMs: number) {
    this.#tauMs = tauMs;
  }

  update(scores: EmotionScores, timestampMs: number): EmotionScores {
    const previous = this.#state;
    if (!previous || this.#tauMs <= 0) {
      this.#state = { ...scores };
    } else {
      const dt = Math.max(0, timestampMs - this.#lastMs);
      const alpha = 1 - Math.exp(-dt / this.#tauMs);
      const next = {} as EmotionScores;
      for (const label of EMOTIONS) next[label] = previous[label] + alpha * (scores[label] - previous[label]);
      this.#state = next;
    }
    this.#lastMs = timestampMs;
    return { ...this.#state };
  }
}
