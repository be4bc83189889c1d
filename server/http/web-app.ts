import express, { type Router } from 'express';
import { existsSync } from 'node:fs';
import path from 'node:path';

/**
 * The folder Vite builds the web app into (`dist/web`, beside the compiled server). Found from the repository root,
 * the nearest folder up with a package.json, so the server compiled into dist/ and the sources run by the tests
 * serve the same build.
 */
export function webAppRoot(from = __dirname): string {
  let dir = from;
  while (!existsSync(path.join(dir, 'package.json')) && path.dirname(dir) !== dir) dir = path.dirname(dir);
  return path.join(dir, 'dist', 'web');
}

/**
 * The web app at `/`: its index.html and hashed assets, all from this node (hospital browsers have no internet).
 * Without a build (`npm run build` makes it) `/` goes to GraphiQL, as before the app existed.
 */
export function webAppRouter(root = webAppRoot()): Router {
  const router = express.Router();
  if (!existsSync(path.join(root, 'index.html'))) {
    router.get('/', (_req, res) => res.redirect('/graphiql'));
    return router;
  }
  // Hashed file names never change content, so they may be cached for good; index.html is always revalidated.
  router.use('/assets', express.static(path.join(root, 'assets'), { immutable: true, maxAge: '365d' }));
  router.get('/', (_req, res) => {
    res.setHeader('cache-control', 'no-cache');
    res.sendFile(path.join(root, 'index.html'));
  });
  return router;
}
