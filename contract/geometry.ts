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
