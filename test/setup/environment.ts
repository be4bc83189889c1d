import type { Circus } from '@jest/types';
import { TestEnvironment } from 'jest-environment-node';

/** Node environment that records whether any test of the file failed, so helpers keep its database then. */
export default class FacetEnvironment extends TestEnvironment {
  handleTestEvent(event: Circus.Event): void {
    if (event.name === 'test_fn_failure' || event.name === 'hook_failure') this.global.__FACET_FILE_FAILED__ = true;
  }
}
