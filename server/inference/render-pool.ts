import os from 'node:os';
import path from 'node:path';
import Piscina from 'piscina';
import { PixelDecodeError } from './pixels';
import type { RenderedMediaType, RenderOptions } from './render';
import type { RenderOutcome, RenderTask } from './render-worker';

export interface RenderPoolOptions {
  /** Worker threads (FACET_RENDER_THREADS; default: the CPU count). */
  threads: number;
  /** Renders that may wait for a thread (FACET_RENDER_QUEUE); one more is refused with RenderQueueFullError. */
  maxQueue: number;
}

export const DEFAULT_RENDER_POOL: RenderPoolOptions = { threads: os.availableParallelism(), maxQueue: 4 * os.availableParallelism() };

/** Every thread is busy and the queue holds `maxQueue` renders: the caller should retry shortly. */
export class RenderQueueFullError extends Error {
  constructor(maxQueue: number) {
    super(`All render threads are busy and ${maxQueue} renders are waiting`);
    this.name = 'RenderQueueFullError';
  }
}

/** Rendering threw inside the worker for a reason other than undecodable pixels (a corrupt object, a bug). */
export class RenderFailedError extends Error {
  constructor(cause: unknown) {
    super(`Rendering failed in a worker thread: ${cause instanceof Error ? cause.message : String(cause)}`);
    this.name = 'RenderFailedError';
  }
}

/**
 * From dist/ the compiled worker; from TypeScript source (jest) a .js entry that compiles the .ts modules on load,
 * since a worker thread has no TypeScript loader of its own.
 */
const WORKER = __filename.endsWith('.ts') ? path.join(__dirname, 'render-worker-source.js') : path.join(__dirname, 'render-worker.js');
/** Piscina's message for a task refused by `maxQueue` (it has no error class of its own). */
const QUEUE_AT_LIMIT = 'Task queue is at limit';

/**
 * WADO-RS rendering (parse, decode, window, PNG/JPEG encode: about 0.4 s for a 512 x 512 JPEG) on a pool of
 * worker threads, so that the server's event loop answers other requests meanwhile. Piscina runs the pool; its
 * threads start on the first render (a process that never renders starts none) and, idle, do not keep the
 * process alive.
 */
export class RenderPool {
  private pool: Piscina<RenderTask, RenderOutcome> | null = null;

  constructor(private readonly options: RenderPoolOptions = DEFAULT_RENDER_POOL) {}

  /**
   * One frame (from 0) of a stored Part 10 object as PNG or JPEG, byte for byte what renderFrame answers.
   * Throws PixelDecodeError, RenderQueueFullError or RenderFailedError.
   */
  async render(object: Buffer, frame: number, mediaType: RenderedMediaType, options: RenderOptions): Promise<Buffer> {
    let outcome: RenderOutcome;
    this.pending++;
    try {
      outcome = await this.started().run({ object, frame, mediaType, options });
    } catch (error) {
      if (error instanceof Error && error.message === QUEUE_AT_LIMIT) throw new RenderQueueFullError(this.options.maxQueue);
      throw new RenderFailedError(error);
    } finally {
      this.pending--;
    }
    if ('pixelDecodeError' in outcome) throw new PixelDecodeError(outcome.pixelDecodeError);
    return Buffer.from(outcome.image.buffer, outcome.image.byteOffset, outcome.image.byteLength);
  }

  /** Renders handed to the pool and not yet answered (running or waiting). */
  get inFlight(): number {
    return this.pending;
  }

  private pending = 0;

  private started(): Piscina<RenderTask, RenderOutcome> {
    this.pool ??= new Piscina<RenderTask, RenderOutcome>({
      filename: WORKER,
      minThreads: this.options.threads,
      maxThreads: this.options.threads,
      maxQueue: this.options.maxQueue,
    });
    return this.pool;
  }

  /** Stops the threads (a render in flight is rejected). */
  async close(): Promise<void> {
    const pool = this.pool;
    this.pool = null;
    await pool?.destroy();
  }
}
