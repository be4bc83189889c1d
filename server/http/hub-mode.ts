import type { RequestHandler } from 'express';
import { getOperationAST, type DocumentNode } from 'graphql';
import { ErrorCode } from '../domain';
import { AppError } from '../errors/app-error';
import { sendProblem } from './problem';

/**
 * A hub holds no patient-level data, so it takes none: on a hub, the only mutations are the federation's and token
 * management; every other (manifests, readings, references, splits, inference…) and the DICOMweb route answer
 * HUB_HOLDS_NO_PATIENT_DATA. Model upload stays open: a model is no patient's data, and federated inference sends
 * the hub's model versions to the sites. An allow-list, so a mutation added later is refused on a hub until
 * someone decides it belongs there.
 */
export const HUB_MUTATIONS: ReadonlySet<string> = new Set([
  'claimFederationTasks',
  'submitFederationResult',
  'startFederatedQuery',
  'cancelFederatedQuery',
  'startFederatedInference',
  'cancelFederatedInference',
  'reportFederationProgress',
  'createApiToken',
  'revokeApiToken',
]);

const REFUSAL = 'This deployment is a federation hub: it holds no patient-level data and takes none';

/** Throws HUB_HOLDS_NO_PATIENT_DATA for a mutation outside HUB_MUTATIONS. */
export function assertHubOperation(document: DocumentNode, operationName: string | undefined): void {
  const operation = getOperationAST(document, operationName);
  if (!operation || operation.operation !== 'mutation') return;
  for (const selection of operation.selectionSet.selections) {
    if (selection.kind !== 'Field') throw new AppError(ErrorCode.HUB_HOLDS_NO_PATIENT_DATA, `${REFUSAL} (fragments are not taken at a hub's mutation root)`);
    if (!HUB_MUTATIONS.has(selection.name.value))
      throw new AppError(ErrorCode.HUB_HOLDS_NO_PATIENT_DATA, `${REFUSAL} (${selection.name.value})`, { field: selection.name.value });
  }
}

/** The DICOMweb route of a hub. */
export const refuseOnHub: RequestHandler = (_req, res) => {
  res.set('connection', 'close');
  sendProblem(res, ErrorCode.HUB_HOLDS_NO_PATIENT_DATA, REFUSAL);
};
