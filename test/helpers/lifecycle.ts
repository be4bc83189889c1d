import { startTestNode, type TestNode, type TestNodeOptions } from './test-node';

declare global {
  var __FACET_FILE_FAILED__: boolean | undefined;
}

/** True unless a test or hook of this file failed (set by test/setup/environment.ts). */
export const filePassed = (): boolean => !globalThis.__FACET_FILE_FAILED__;

/**
 * Starts a node for the file in beforeAll and closes it in afterAll, dropping the database only when the
 * whole file passed (a failing file leaves its database for inspection).
 */
export function useTestNode(options: TestNodeOptions = {}): () => TestNode {
  let node: TestNode | null = null;
  beforeAll(async () => {
    node = await startTestNode(options);
  });
  afterAll(async () => {
    await node?.close(filePassed());
  });
  return () => {
    if (!node) throw new Error('The test node is not started');
    return node;
  };
}
