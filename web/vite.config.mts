import { fileURLToPath } from 'node:url';
import { defineConfig, type Rolldown } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

/**
 * What the build need not say: timings of the JavaScript plugins (Vite's own asset and worker transforms) say only
 * how loaded the machine is; the WASM codecs' Emscripten glue requires fs and path on its Node.js branch only, and
 * vtk.js's XML reader (which cornerstone never calls: it reads no VTK files) requires url, so Vite's empty browser
 * stand-ins for them are right.
 */
const quiet: Pick<Rolldown.InputOptions, 'checks' | 'onLog'> = {
  checks: { pluginTimings: false },
  onLog(level, log, handler) {
    if (log.plugin === 'rolldown:vite-resolve' && /"(fs|path|url)" has been externalized for browser compatibility/.test(log.message)) return;
    handler(level, log);
  },
};

/**
 * The web app is built into dist/web, beside the compiled server, which serves it at `/`. Every asset is bundled
 * (no CDN, no font from outside): hospital browsers have no route to the internet.
 */
export default defineConfig({
  root,
  base: '/',
  // JSX through Vite's own transformer (oxc): @vitejs/plugin-react adds only hot reload in development, and its
  // optional Babel peers do not resolve beside jest's Babel 7.
  oxc: { jsx: { runtime: 'automatic' } },
  build: {
    outDir: fileURLToPath(new URL('../dist/web', import.meta.url)),
    emptyOutDir: true,
    // Source maps stay out of a hospital deployment's bundle. The chunk limit is raised for the charting library
    // and for the DICOM viewer (cornerstone3D with vtk.js, about 4.3 MB, 1.2 MB gzipped), which the reading page
    // loads on its own (a dynamic import) when it first shows a joint image.
    sourcemap: false,
    chunkSizeWarningLimit: 4500,
    rolldownOptions: quiet,
  },
  // The DICOM image loader's decoding worker is an ES module (it imports its codecs).
  worker: { format: 'es', rolldownOptions: quiet },
  // Development: `npx vite --config web/vite.config.mts` proxies the API to a running `npm start`.
  server: { proxy: { '/graphql': { target: 'http://127.0.0.1:4000', ws: true } } },
});
