import type { Circus } from '@jest/types';
import { TestEnvironment } from 'jest-environment-node';

/** Node environment that records whether any test of the file failed, so helpers keep its database then. */
export default class FacetEnvironment extends TestEnvironment {
  constructor(...args: ConstructorParameters<typeof TestEnvironment>) {
    super(...args);
    // Native addons (ONNX Runtime) check typed arrays against Node's own constructors; jest's sandbox has its own
    // copies, so "a float32 tensor's data must be a Float32Array" would fail for arrays made in tests. Share Node's.
    for (const name of [
      'Float32Array',
      'Float64Array',
      'Int32Array',
      'Uint8Array',
      'Int8Array',
      'Uint16Array',
      'Int16Array',
      'Uint32Array',
      'BigInt64Array',
      'ArrayBuffer',
    ] as const) {
      this.global[name] = globalThis[name] as never;
    }
  }

  handleTestEvent(event: Circus.Event): void {
    if (event.name === 'test_fn_failure' || event.name === 'hook_failure') this.global.__FACET_FILE_FAILED__ = true;
  }
}
