/**
 * How a live stream follows its faces between keyframes (LIVE_TRACKER=crop). Apart from the
 * tracker itself so that config.ts can read the defaults without loading tfjs in the main thread.
 */

/** The cheap step between crop detector runs (see face-motion.ts). */
export interface MotionOptions {
  /** at most this many frames in a row a face moves by its patch match alone; 0 = the crop detector on every tracked frame */
  maxSteps: number;
  /** patch side in cells */
  cells: number;
  /** the largest shift searched, as a share of the patch side (in each direction) */
  maxShift: number;
  /** the patch is also matched this much larger and smaller (0: shifts only) */
  scaleStep: number;
  /** the largest accepted match error: mean absolute difference over the patch's own mean absolute deviation */
  maxError: number;
}

export interface TrackingOptions {
  /** crop side = expand x the longer side of the previous box */
  expand: number;
  /** a crop whose best detection near the old position scores below this has lost its face */
  minScore: number;
  /** the face centre may move at most this many previous face sizes between two frames */
  maxShift: number;
  motion: MotionOptions;
}

/**
 * Measured on groups-pan.mp4 over 9-frame tracking chains: with a 2x crop, 94% of SSD's faces were
 * found again at IoU >= 0.5. Crop scores where a face was: 1st percentile 0.52; where none was:
 * at most 0.40, hence 0.5.
 *
 * Motion steps, measured against the crop detector on the same frames (5 fps, 16 cells, scales
 * 1 and 1 +- 4%; every face checked 1, 2 and 3 frames after the detector found it): on
 * one-face.mp4 every step matched (error <= 0.4), eye and mouth points within 3.2-3.7% of the eye
 * distance (median) of the detector's, the same label on 100% of faces; on groups-pan.mp4 (a zoom
 * over group photos, small faces) 100% / 97% / 79% matched 1 / 2 / 3 frames on, points within
 * 5-6%, labels the same on 91-92%. Two steps, then the crop detector again: on groups-pan the
 * labels' agreement with the accurate per-image path went from 88% to 84.9-85.5% for it.
 */
export const DEFAULT_TRACKING: TrackingOptions = {
  expand: 2,
  minScore: 0.5,
  maxShift: 0.5,
  motion: { maxSteps: 2, cells: 16, maxShift: 0.25, scaleStep: 0.04, maxError: 0.4 },
};
