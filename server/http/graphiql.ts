import express, { type Router } from 'express';
import path from 'node:path';

/**
 * GraphiQL from the npm packages, served by this node: hospital networks often have no route to a CDN.
 * GraphiQL 3 is the last major with a UMD build, which needs React 18's UMD files beside it.
 */
const ASSETS: Record<string, string> = {
  'react.js': 'react:umd/react.production.min.js',
  'react-dom.js': 'react-dom:umd/react-dom.production.min.js',
  'graphiql.js': 'graphiql:graphiql.min.js',
  'graphiql.css': 'graphiql:graphiql.min.css',
};

/** `pkg:file` to a path inside the installed package (these files are not in the packages' `exports`). */
function packageFile(spec: string): string {
  const [pkg, file] = spec.split(':');
  return path.join(path.dirname(require.resolve(`${pkg}/package.json`)), file);
}

const PAGE = `<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8" />
  <title>Facet GraphiQL</title>
  <style>body { margin: 0; height: 100vh; }</style>
  <link rel="stylesheet" href="/graphiql/assets/graphiql.css" />
</head>
<body>
  <div id="graphiql" style="height: 100vh"></div>
  <script src="/graphiql/assets/react.js"></script>
  <script src="/graphiql/assets/react-dom.js"></script>
  <script src="/graphiql/assets/graphiql.js"></script>
  <script>
    // Paste a token in the Headers tab: {"Authorization": "Bearer fct_..."}
    const fetcher = GraphiQL.createFetcher({ url: '/graphql', subscriptionUrl: location.origin.replace(/^http/, 'ws') + '/graphql' });
    const defaultQuery = [
      '# Facet. Put your token in Headers below: {"Authorization": "Bearer fct_..."}',
      '# (npm start prints the admin token; docs/api.md and docs/statistics.md list every operation.)',
      '',
      '{',
      '  sites { nodes { code name } }',
      '  patients(first: 3, filter: { eligible: true }) {',
      '    totalCount',
      '    nodes { pseudonym site { code } joints { level side referenceGrades { modality feature grade source } } }',
      '  }',
      '  studyFlow { site enrolled eligible analysed }',
      '}',
    ].join('\\n');
    ReactDOM.createRoot(document.getElementById('graphiql')).render(
      React.createElement(GraphiQL, { fetcher, defaultQuery, defaultEditorToolsVisibility: true, headers: '{"Authorization": "Bearer "}' })
    );
  </script>
</body>
</html>`;

export function graphiqlRouter(): Router {
  const router = express.Router();
  router.get('/', (_req, res) => {
    res.type('html').send(PAGE);
  });
  for (const [name, modulePath] of Object.entries(ASSETS)) {
    const file = packageFile(modulePath);
    router.get(`/assets/${name}`, (_req, res) => {
      res.sendFile(file, { maxAge: '1d' });
    });
  }
  return router;
}
