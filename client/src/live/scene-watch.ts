/**
 * Notices when the picture on screen is no longer the one the boxes were computed for (a cut to
 * another scene, fast motion): each sent frame's 32x32 grey thumbnail is kept until its answer
 * arrives; while an answer's boxes are shown, the live picture's thumbnail is compared with the
 * analysed frame's every few animation frames, and past the threshold the boxes are hidden until
 * the next answer. The same measure as the server's scene-cut check (contract/thumbnails.ts).
 */
import { THUMBNAIL_SIDE, thumbnailDifference } from '../../../contract/thumbnails.ts';

/** Grey-level change at which the boxes no longer match the picture (the server's cut threshold). */
export const STALE_PICTURE_DIFFERENCE = 30;
/** Thumbnails of frames awaiting an answer; the page never has more than one in flight. */
const MAX_PENDING = 8;

/** RGBA pixels (canvas ImageData) as BT.601 grey levels. */
export function greyFromRgba(rgba: Uint8ClampedArray): Uint8Array {
  const grey = new Uint8Array(rgba.length / 4);
  for (let i = 0; i < grey.length; i++) grey[i] = Math.round(0.299 * rgba[4 * i]! + 0.587 * rgba[4 * i + 1]! + 0.114 * rgba[4 * i + 2]!);
  return grey;
}

export class SceneWatch {
  readonly #ctx: CanvasRenderingContext2D | null;
  readonly #pending = new Map<number, Uint8Array>();

  constructor() {
    const canvas = document.createElement('canvas');
    canvas.width = THUMBNAIL_SIDE;
    canvas.height = THUMBNAIL_SIDE;
    this.#ctx = canvas.getContext('2d', { willReadFrequently: true });
  }

  /** The video's current picture as a grey thumbnail (undefined before the first frame). */
  grab(video: HTMLVideoElement): Uint8Array | undefined {
    if (!this.#ctx || video.videoWidth === 0) return undefined;
    this.#ctx.drawImage(video, 0, 0, THUMBNAIL_SIDE, THUMBNAIL_SIDE);
    return greyFromRgba(this.#ctx.getImageData(0, 0, THUMBNAIL_SIDE, THUMBNAIL_SIDE).data);
  }

  /** Remembers what frame `seq` showed when it was sent. */
  sent(seq: number, video: HTMLVideoElement): void {
    const thumbnail = this.grab(video);
    if (!thumbnail) return;
    this.#pending.set(seq, thumbnail);
    for (const old of this.#pending.keys()) if (this.#pending.size > MAX_PENDING) this.#pending.delete(old);
  }

  /** The thumbnail of answered frame `seq` (and forgets it and every older one). */
  answered(seq: number): Uint8Array | undefined {
    const thumbnail = this.#pending.get(seq);
    for (const key of this.#pending.keys()) if (key <= seq) this.#pending.delete(key);
    return thumbnail;
  }

  /** Whether the picture now differs from `analysed` so much that its boxes would mislead. */
  isStale(analysed: Uint8Array, video: HTMLVideoElement): boolean {
    const now = this.grab(video);
    return now !== undefined && thumbnailDifference(analysed, now) > STALE_PICTURE_DIFFERENCE;
  }
}
