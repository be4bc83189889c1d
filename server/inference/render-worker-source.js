// The render worker run from TypeScript source, where no dist/ exists (jest runs server/ through @swc/jest, and a
// worker thread does not inherit jest's transform): each .ts module is compiled with @swc/core (a devDependency)
// with the options jest.config.js uses (tools/swc-options.js). From dist/, render-pool.ts loads the compiled render-worker.js instead.
const fs = require('node:fs');
const { transformSync } = require('@swc/core');

const SWC = require('../../tools/swc-options');
require.extensions['.ts'] = (module, filename) => {
  module._compile(transformSync(fs.readFileSync(filename, 'utf8'), { ...SWC, filename }).code, filename);
};
module.exports = require('./render-worker.ts');
