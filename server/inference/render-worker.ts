/**
 * The body of a render worker thread (render-pool.ts): parses the stored object and renders one frame, all of it
 * off the server's event loop. PixelDecodeError comes back as a value, since an error's class does not survive the
 * trip between threads; anything else thrown here rejects the caller's task and leaves the thread usable.
 */
import { readPart10 } from '../dicom/reader';
import { PixelDecodeError } from './pixels';
import { renderFrame, type RenderedMediaType, type RenderOptions } from './render';

export interface RenderTask {
  /** The stored Part 10 object, as read from the object store. */
  object: Uint8Array;
  /** From 0. */
  frame: number;
  mediaType: RenderedMediaType;
  options: RenderOptions;
}

export type RenderOutcome = { image: Uint8Array } | { pixelDecodeError: string };

export default async function renderTask(task: RenderTask): Promise<RenderOutcome> {
  const object = Buffer.from(task.object.buffer, task.object.byteOffset, task.object.byteLength);
  try {
    return { image: await renderFrame(readPart10(object), task.frame, task.mediaType, task.options) };
  } catch (error) {
    if (error instanceof PixelDecodeError) return { pixelDecodeError: error.message };
    throw error;
  }
}
