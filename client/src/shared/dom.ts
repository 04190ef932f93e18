/** Small DOM helpers shared by both pages. */
import type { EmotionScores, Face } from '../../../contract/socket.ts';
import { EMOTIONS, EMOTION_COLORS, percent } from './emotions.ts';

/** The page's element with this id; throws if the page has none. */
export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const element = document.getElementById(id);
  if (!element) throw new Error(`missing #${id} in the page`);
  return element as T;
}

export function element<K extends keyof HTMLElementTagNameMap>(tag: K, props: { className?: string; text?: string } = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (props.className) el.className = props.className;
  if (props.text !== undefined) el.textContent = props.text;
  el.append(...children);
  return el;
}

/** A stacked bar of 7 probabilities with a text alternative. */
export function emotionBar(scores: EmotionScores): HTMLElement {
  const bar = element('div', { className: 'emotion-bar' });
  bar.setAttribute('role', 'img');
  bar.setAttribute(
    'aria-label',
    EMOTIONS.map((e) => `${e} ${percent(scores[e])}`).join(', '),
  );
  for (const emotion of EMOTIONS) {
    const part = element('span');
    part.style.width = `${scores[emotion] * 100}%`;
    part.style.background = EMOTION_COLORS[emotion];
    part.title = `${emotion} ${percent(scores[emotion])}`;
    bar.append(part);
  }
  return bar;
}

/** "happy 72%" chip coloured by the emotion, or a grey "uncertain" when the server abstains. */
export function emotionChip(face: Pick<Face, 'dominant' | 'smoothed'> & { uncertain?: boolean }): HTMLElement {
  if (face.uncertain) return element('span', { className: 'chip uncertain', text: 'uncertain' });
  const chip = element('span', { className: 'chip', text: `${face.dominant} ${percent(face.smoothed[face.dominant])}` });
  chip.style.setProperty('--chip', EMOTION_COLORS[face.dominant]);
  return chip;
}

/** Shows (or clears, with undefined) a message in an alert region. */
export function showMessage(region: HTMLElement, message: string | undefined, kind: 'error' | 'info' = 'error'): void {
  region.textContent = message ?? '';
  region.dataset.kind = kind;
  region.hidden = !message;
}
