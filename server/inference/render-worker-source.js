// The render worker run from TypeScript source, where no dist/ exists (jest runs server/ through @swc/jest, and a
// worker thread does not inherit jest's transform): each .ts module is compiled with @swc/core (a devDependency)
// as jest.config.js does. From dist/, render-pool.ts loads the compiled render-worker.js instead.
const fs = require('node:fs');
const { transformSync } = require('@swc/core');

const SWC = {
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    target: 'es2022',
    keepClassNames: true,
  },
  module: { type: 'commonjs' },
  sourceMaps: 'inline',
};
require.extensions['.ts'] = (module, filename) => {
  module._compile(transformSync(fs.readFileSync(filename, 'utf8'), { ...SWC, filename }).code, filename);
};
module.exports = require('./render-worker.ts');
