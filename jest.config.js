/** Jest 30 with @swc/jest: ts-jest does not support TypeScript 7, swc compiles the decorators we use. */
const swc = require('./tools/swc-options');

module.exports = {
  testEnvironment: '<rootDir>/test/setup/environment.ts',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: { '^.+\\.ts$': ['@swc/jest', swc] },
  globalSetup: '<rootDir>/test/setup/global-setup.ts',
  setupFiles: ['reflect-metadata', '<rootDir>/test/setup/quiet-dcmjs.ts'],
  // A ceiling, not a speed goal: a loaded 2-core machine takes minutes to load the demo study into a test database.
  // One ceiling for every hook and test (files set none of their own): a hang still fails, a slow machine does not.
  testTimeout: 600_000,
  maxWorkers: 2,
};
