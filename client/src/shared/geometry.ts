/**
 * Where a video's picture lands inside its element under `object-fit: contain`, and how a box in
 * source pixels maps onto an overlay canvas that covers the element. Pure, so it is tested in Node.
 */

/** A rectangle: top-left corner and size. */
export interface Rect {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface Size {
  width: number;
  height: number;
}

/** The letterboxed picture rectangle inside a container (CSS pixels), centred like the browser does. */
export function containRect(container: Size, media: Size): Rect {
  if (container.width <= 0 || container.height <= 0 || media.width <= 0 || media.height <= 0) {
    return { x: 0, y: 0, width: 0, height: 0 };
  }
  const scale = Math.min(container.width / media.width, container.height / media.height);
  const width = media.width * scale;
  const height = media.height * scale;
  return { x: (container.width - width) / 2, y: (container.height - height) / 2, width, height };
}

/**
 * A box in the pixels of the analysed frame (`frame`: the JPEG's size) mapped into the picture
 * rectangle `picture` (container pixels). `mirrored` flips x, for a selfie view.
 */
export function mapBox(box: Rect, frame: Size, picture: Rect, mirrored = false): Rect {
  if (frame.width <= 0 || frame.height <= 0) return { x: 0, y: 0, width: 0, height: 0 };
  const sx = picture.width / frame.width;
  const sy = picture.height / frame.height;
  const width = box.width * sx;
  const left = mirrored ? frame.width - box.x - box.width : box.x;
  return { x: picture.x + left * sx, y: picture.y + box.y * sy, width, height: box.height * sy };
}

/** The capture size for a video: its own size scaled down so the longer side is at most `maxSide`. */
export function captureSize(video: Size, maxSide: number): Size {
  const longer = Math.max(video.width, video.height);
  if (longer <= 0) return { width: 0, height: 0 };
  const scale = Math.min(1, maxSide / longer);
  return { width: Math.max(1, Math.round(video.width * scale)), height: Math.max(1, Math.round(video.height * scale)) };
}
