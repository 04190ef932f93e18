import { CategoryScale, Chart, Filler, Legend, LinearScale, LineController, LineElement, PointElement, Tooltip } from 'chart.js';
import type { EmotionScores } from '../../../contract/socket.ts';
import { EMOTIONS, EMOTION_COLORS } from './emotions.ts';

Chart.register(LineController, LineElement, PointElement, LinearScale, CategoryScale, Legend, Tooltip, Filler);

/** One sample: time in seconds and the 7 probabilities. */
export interface ChartPoint {
  t: number;
  scores: EmotionScores;
}

/** One emotion timeline: 7 lines (probability 0..1) over time in seconds. */
export class EmotionTimelineChart {
  readonly chart: Chart<'line', { x: number; y: number }[]>;

  constructor(canvas: HTMLCanvasElement, options: { legend?: boolean; xTitle?: string } = {}) {
    this.chart = new Chart(canvas, {
      type: 'line',
      data: {
        datasets: EMOTIONS.map((emotion) => ({
          label: emotion,
          data: [],
          borderColor: EMOTION_COLORS[emotion],
          backgroundColor: EMOTION_COLORS[emotion],
          borderWidth: 2,
          pointRadius: 0,
          tension: 0.25,
        })),
      },
      options: {
        animation: false,
        responsive: true,
        maintainAspectRatio: false,
        parsing: false,
        normalized: true,
        interaction: { mode: 'nearest', axis: 'x', intersect: false },
        scales: {
          x: { type: 'linear', title: { display: Boolean(options.xTitle), text: options.xTitle ?? '' }, ticks: { maxTicksLimit: 6 } },
          y: { min: 0, max: 1, ticks: { stepSize: 0.25, callback: (v) => `${Math.round(Number(v) * 100)}%` } },
        },
        plugins: {
          legend: { display: options.legend ?? false, position: 'bottom', labels: { boxWidth: 10, boxHeight: 10 } },
          tooltip: { callbacks: { label: (item) => `${item.dataset.label}: ${Math.round(item.parsed.y! * 100)}%` } },
        },
      },
    });
  }

  setPoints(points: readonly ChartPoint[]): void {
    this.chart.data.datasets.forEach((dataset, i) => {
      const emotion = EMOTIONS[i]!;
      dataset.data = points.map((p) => ({ x: p.t, y: p.scores[emotion] }));
      // A lone sample has no line to draw: show it as a dot.
      (dataset as { pointRadius?: number }).pointRadius = points.length < 2 ? 3 : 0;
    });
    this.chart.update('none');
  }

  destroy(): void {
    this.chart.destroy();
  }
}

/** A static legend of the 7 emotion colours (HTML, so it is readable by screen readers). */
export function emotionLegend(): HTMLElement {
  const list = document.createElement('ul');
  list.className = 'legend';
  list.setAttribute('aria-label', 'Emotion colours');
  for (const emotion of EMOTIONS) {
    const item = document.createElement('li');
    const swatch = document.createElement('span');
    swatch.className = 'swatch';
    swatch.style.background = EMOTION_COLORS[emotion];
    item.append(swatch, emotion);
    list.append(item);
  }
  return list;
}
