import type { RenderOptions, WindowFunction } from '../../inference/render';
import { badQuery } from './qido-query';

/** The most frames one frames request names. */
const MAX_FRAMES = 1000;
const RENDER_PARAMETERS = new Set(['window', 'quality', 'viewport', 'accept']);
const FUNCTIONS: Record<string, WindowFunction> = { linear: 'linear', 'linear-exact': 'linear-exact', sigmoid: 'sigmoid' };

/** A frame list of PS3.18 8.3.3 (`1,3,4`): frame numbers from 1, in the order asked. */
export function parseFrameList(text: string): number[] {
  const parts = text.split(',');
  if (parts.length > MAX_FRAMES || !parts.every((p) => /^[1-9]\d{0,8}$/.test(p))) {
    throw badQuery('frames', `A frame list is up to ${MAX_FRAMES} frame numbers from 1, separated by commas`);
  }
  return parts.map(Number);
}

function single(parameter: string, value: unknown): string {
  if (typeof value !== 'string') throw badQuery(parameter, `${parameter} is given more than once or without a value`);
  return value;
}

/**
 * The rendering parameters of PS3.18 8.3.5.1: `window=center,width,function` (function linear, linear-exact or
 * sigmoid; PS3.3 C.11.2.1.3), `quality` 1-100 for lossy media types, `viewport=columns,rows` to fit into;
 * `accept` is the media type override the transport reads. Anything else is BAD_REQUEST naming the parameter.
 */
export function parseRenderParams(params: Record<string, unknown>): RenderOptions {
  const options: RenderOptions = {};
  for (const [parameter, raw] of Object.entries(params)) {
    if (!RENDER_PARAMETERS.has(parameter))
      throw badQuery(parameter.slice(0, 64), `${parameter.slice(0, 64)} is not a rendering parameter; these are: window, quality, viewport, accept`);
    const value = single(parameter, raw);
    if (parameter === 'window') {
      const [c, w, fn, ...rest] = value.split(',');
      const center = Number(c);
      const width = Number(w);
      const windowFunction = FUNCTIONS[(fn ?? '').toLowerCase()];
      if (
        rest.length ||
        c === undefined ||
        c.trim() === '' ||
        w === undefined ||
        w.trim() === '' ||
        !Number.isFinite(center) ||
        !Number.isFinite(width) ||
        width <= 0 ||
        !windowFunction
      ) {
        throw badQuery('window', 'window takes center,width,function: two numbers (width above 0) and linear, linear-exact or sigmoid');
      }
      options.window = { center, width, function: windowFunction };
    } else if (parameter === 'quality') {
      if (!/^\d{1,3}$/.test(value) || Number(value) < 1 || Number(value) > 100) throw badQuery('quality', 'quality takes an integer from 1 to 100');
      options.quality = Number(value);
    } else if (parameter === 'viewport') {
      const m = /^([1-9]\d{0,4}),([1-9]\d{0,4})$/.exec(value);
      if (!m) throw badQuery('viewport', 'viewport takes columns,rows: two integers from 1 to 99999');
      options.viewport = { width: Number(m[1]), height: Number(m[2]) };
    }
  }
  return options;
}
