/** Camera access with messages a person can act on. */
export async function openCamera(): Promise<MediaStream> {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error('This browser cannot use a camera here. Camera access needs a secure page (https or localhost) and a recent browser.');
  }
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: false,
      video: { width: { ideal: 640 }, height: { ideal: 480 }, facingMode: 'user' },
    });
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (name === 'NotAllowedError' || name === 'SecurityError') {
      throw new Error('Camera access was refused. You can still watch the others in the session. To send your camera, allow it for this site in your browser settings, then press "Leave" and "Join session" again.');
    }
    if (name === 'NotFoundError' || name === 'OverconstrainedError') {
      throw new Error('No camera was found. You can still watch the others in the session. To send your camera, connect one, then press "Leave" and "Join session" again.');
    }
    if (name === 'NotReadableError') {
      throw new Error('The camera is in use by another application. Close it, then press "Leave" and "Join session" again.');
    }
    throw new Error(`The camera could not be opened (${name ?? 'unknown error'}).`);
  }
}

/** JPEG bytes of the video's current picture at `size`, through a reusable offscreen canvas. */
export class FrameGrabber {
  readonly #canvas = document.createElement('canvas');

  async grab(video: HTMLVideoElement, size: { width: number; height: number }, quality: number): Promise<ArrayBuffer> {
    if (this.#canvas.width !== size.width || this.#canvas.height !== size.height) {
      this.#canvas.width = size.width;
      this.#canvas.height = size.height;
    }
    const ctx = this.#canvas.getContext('2d');
    if (!ctx) throw new Error('no 2d canvas');
    ctx.drawImage(video, 0, 0, size.width, size.height);
    const blob = await new Promise<Blob | null>((resolve) => this.#canvas.toBlob(resolve, 'image/jpeg', quality));
    if (!blob) throw new Error('the frame could not be encoded');
    return blob.arrayBuffer();
  }
}
