/**
 * Draws faces over a video: the canvas covers the video element exactly (CSS), its backing store
 * follows the element size times devicePixelRatio, and boxes go through the same `object-fit:
 * contain` mapping the browser applies to the picture, so they line up at any window size.
 */
import type { Face } from '../../../contract/socket.ts';
import { EMOTIONS, EMOTION_COLORS, percent } from './emotions.ts';
import { containRect, mapBox, type Size } from './geometry.ts';

/** The faces of one analysed frame, with that frame's size. */
export interface OverlayFrame {
  faces: Face[];
  /** size of the analysed JPEG (the boxes' pixel space) */
  frame: Size;
}

const BAR_HEIGHT = 8;
const LABEL_FONT = '600 13px system-ui, -apple-system, "Segoe UI", Roboto, sans-serif';

export function drawOverlay(canvas: HTMLCanvasElement, video: HTMLVideoElement, overlay: OverlayFrame | undefined, mirrored: boolean): void {
  const cssWidth = canvas.clientWidth;
  const cssHeight = canvas.clientHeight;
  const dpr = window.devicePixelRatio || 1;
  const width = Math.round(cssWidth * dpr);
  const height = Math.round(cssHeight * dpr);
  if (canvas.width !== width || canvas.height !== height) {
    canvas.width = width;
    canvas.height = height;
  }
  const ctx = canvas.getContext('2d');
  if (!ctx) return;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, cssWidth, cssHeight);
  if (!overlay || video.videoWidth === 0) return;
  const picture = containRect({ width: cssWidth, height: cssHeight }, { width: video.videoWidth, height: video.videoHeight });
  for (const face of overlay.faces) drawFace(ctx, face, mapBox(face.box, overlay.frame, picture, mirrored), cssWidth);
}

/** Box and label colour of a face whose label the server does not vouch for. */
const UNCERTAIN_COLOR = '#c8c8c8';

function drawFace(ctx: CanvasRenderingContext2D, face: Face, box: { x: number; y: number; width: number; height: number }, canvasWidth: number): void {
  // The server abstains on a track's first sample and on flat scores: no label then.
  const color = face.uncertain ? UNCERTAIN_COLOR : EMOTION_COLORS[face.dominant];
  ctx.lineWidth = 3;
  ctx.strokeStyle = color;
  ctx.strokeRect(box.x, box.y, box.width, box.height);

  // Label above the box (inside it when the box touches the top edge).
  const label = face.uncertain ? 'uncertain' : `${face.dominant} ${percent(face.smoothed[face.dominant])}`;
  ctx.font = LABEL_FONT;
  const textWidth = ctx.measureText(label).width;
  const labelHeight = 20;
  const labelY = box.y - labelHeight >= 0 ? box.y - labelHeight : box.y;
  const labelX = Math.min(Math.max(0, box.x - 1.5), Math.max(0, canvasWidth - textWidth - 10));
  ctx.fillStyle = color;
  ctx.fillRect(labelX, labelY, textWidth + 10, labelHeight);
  ctx.fillStyle = '#111';
  ctx.textBaseline = 'middle';
  ctx.fillText(label, labelX + 5, labelY + labelHeight / 2 + 1);

  // Compact stacked bar of the 7 smoothed probabilities under the box.
  const barWidth = Math.max(box.width, 60);
  const barX = Math.min(Math.max(0, box.x), Math.max(0, canvasWidth - barWidth));
  const barY = box.y + box.height + 3;
  ctx.fillStyle = 'rgba(0,0,0,0.55)';
  ctx.fillRect(barX - 1, barY - 1, barWidth + 2, BAR_HEIGHT + 2);
  let x = barX;
  for (const emotion of EMOTIONS) {
    const w = face.smoothed[emotion] * barWidth;
    ctx.fillStyle = EMOTION_COLORS[emotion];
    ctx.fillRect(x, barY, w, BAR_HEIGHT);
    x += w;
  }
}
