import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

const root = fileURLToPath(new URL('.', import.meta.url));

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
    // Source maps stay out of a hospital deployment's bundle; the chunk limit is raised for the charting library.
    sourcemap: false,
    chunkSizeWarningLimit: 2000,
  },
  // Development: `npx vite --config web/vite.config.mts` proxies the API to a running `npm start`.
  server: { proxy: { '/graphql': { target: 'http://127.0.0.1:4000', ws: true } } },
});
