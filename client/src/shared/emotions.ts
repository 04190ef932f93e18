import { EMOTIONS } from '../../../contract/emotions.ts';
import type { Emotion } from '../../../contract/socket.ts';

export { EMOTIONS };
export type { Emotion };

/** One colour per emotion, the same in overlays, bars, charts and legends (colour-blind-friendly Okabe-Ito colours, grey for neutral). */
export const EMOTION_COLORS: Record<Emotion, string> = {
  angry: '#d55e00',
  disgust: '#009e73',
  fear: '#cc79a7',
  happy: '#e69f00',
  sad: '#0072b2',
  surprise: '#56b4e9',
  neutral: '#8c8c8c',
};

export function percent(value: number): string {
  return `${Math.round(value * 100)}%`;
}
