/**
 * How TypeScript source runs without dist/: @swc/jest in jest.config.js, and the render worker thread under jest
 * (server/inference/render-worker-source.js), which does not inherit jest's transform. One set of options for both.
 */
module.exports = {
  jsc: {
    parser: { syntax: 'typescript', decorators: true },
    transform: { legacyDecorator: true, decoratorMetadata: true },
    target: 'es2022',
    keepClassNames: true,
  },
  module: { type: 'commonjs' },
  sourceMaps: 'inline',
};
