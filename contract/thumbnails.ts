/**
 * The scene-change measure the server (scene cuts in live streams and video jobs) and the live page
 * (hiding boxes that belong to a picture no longer shown) share: the mean absolute difference of
 * two small grey thumbnails. Camera motion and expressions change a 32x32 thumbnail a little; a
 * cut to another shot changes most of it (52-85 grey levels at the test clips' cuts, at most 10.4
 * elsewhere).
 */
export const THUMBNAIL_SIDE = 32;

/** Mean absolute difference of two thumbnails of the same side, in grey levels (0..255). */
export function thumbnailDifference(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length || a.length === 0) throw new Error(`thumbnails differ in size (${a.length} vs ${b.length})`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}
