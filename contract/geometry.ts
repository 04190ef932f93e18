/** Pixel geometry shared by the server's stages, the wire protocol, the client's overlays and training. */

/** Axis-aligned box in source-image pixels. */
export interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

/** A point in continuous image coordinates: pixel (i, j) covers [i, i+1) x [j, j+1). */
export type Point = readonly [number, number];

/** Intersection over union of two boxes (0 when they do not overlap). */
export function iou(a: Box, b: Box): number {
  const x1 = Math.max(a.x, b.x);
  const y1 = Math.max(a.y, b.y);
  const x2 = Math.min(a.x + a.width, b.x + b.width);
  const y2 = Math.min(a.y + a.height, b.y + b.height);
  const inter = Math.max(0, x2 - x1) * Math.max(0, y2 - y1);
  const union = a.width * a.height + b.width * b.height - inter;
  return union > 0 ? inter / union : 0;
}
