import { init as initCore } from '@cornerstonejs/core';
import { init as initDicomImageLoader } from '@cornerstonejs/dicom-image-loader';
import { addTool, init as initTools, PanTool, WindowLevelTool, ZoomTool } from '@cornerstonejs/tools';

let ready: Promise<void> | null = null;

/**
 * cornerstone3D once per page: the rendering core (WebGL where the browser has it, its CPU renderer where it has
 * not: a hospital workstation without a GPU, or a browser with it disabled), the tools, and the DICOM image
 * loader, whose decoding web worker and WASM codecs (JPEG baseline and lossless, JPEG-LS, JPEG 2000) Vite bundles
 * beside the app: nothing is fetched from anywhere but this server.
 */
export function initCornerstone(): Promise<void> {
  ready ??= (async () => {
    initCore();
    initTools();
    // One decoding worker: a reader looks at one image at a time, and each worker holds its own WASM codecs.
    initDicomImageLoader({ maxWebWorkers: 1 });
    for (const tool of [WindowLevelTool, ZoomTool, PanTool]) addTool(tool);
  })();
  return ready;
}
