import { isInferenceAggregate } from '../../federation/federated-inference';
import type { InferenceQuery } from '../../federation/federated-inference';
import type { ResultPayload } from '../../federation/protocol';

/**
 * Whether the hub stores a site's result for an INFERENCE task: a SUCCEEDED one releases exactly the provenance of
 * its run and names the task's model in its manifest; a REFUSED or FAILED one carries nothing.
 */
export function inferenceResultAcceptable(payload: ResultPayload, taskQuery: object): boolean {
  if (payload.state !== 'SUCCEEDED') return payload.aggregate === null;
  const model = (taskQuery as Partial<InferenceQuery>).model?.sha256;
  return isInferenceAggregate(payload.aggregate) && payload.aggregate.modelSha256 === model && payload.manifest.modelSha256 === model;
}
