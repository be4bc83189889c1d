import { Adjudication } from './adjudication.entity';
import { ApiToken } from './api-token.entity';
import { AuditEvent } from './audit-event.entity';
import { CellExposure } from './cell-exposure.entity';
import { FederationInboxTask } from './federation-inbox-task.entity';
import { FederationReleasePolicy } from './federation-release-policy.entity';
import { FederationReleasedPopulation } from './federation-released-population.entity';
import { FederatedInferenceProgress } from './federated-inference-progress.entity';
import { FederatedInferenceRun } from './federated-inference-run.entity';
import { GradingFeature } from './grading-feature.entity';
import { InferenceJob } from './inference-job.entity';
import { Instance } from './instance.entity';
import { JointImage } from './joint-image.entity';
import { ModelVersion } from './model-version.entity';
import { Prediction } from './prediction.entity';
import { NodeSecret } from './node-secret.entity';
import { Joint } from './joint.entity';
import { Patient } from './patient.entity';
import { Reader } from './reader.entity';
import { Reading } from './reading.entity';
import { ReferenceGrade } from './reference-grade.entity';
import { ReferenceImport } from './reference-import.entity';
import { Series } from './series.entity';
import { Site } from './site.entity';
import { SplitAssignment } from './split-assignment.entity';
import { SplitVersion } from './split-version.entity';
import { Study } from './study.entity';
import { FederationNonce } from './federation-nonce.entity';
import { FederationResult } from './federation-result.entity';
import { FederationSiteContact } from './federation-site-contact.entity';
import { FederationSiteTask } from './federation-site-task.entity';
import { FederationTask } from './federation-task.entity';

export {
  FederationNonce,
  FederationResult,
  FederationSiteContact,
  FederationSiteTask,
  FederationTask,
  Adjudication,
  ApiToken,
  AuditEvent,
  CellExposure,
  FederationInboxTask,
  FederationReleasePolicy,
  FederationReleasedPopulation,
  FederatedInferenceProgress,
  FederatedInferenceRun,
  GradingFeature,
  InferenceJob,
  Instance,
  Joint,
  JointImage,
  ModelVersion,
  NodeSecret,
  Patient,
  Prediction,
  Reader,
  Reading,
  ReferenceGrade,
  ReferenceImport,
  Series,
  Site,
  SplitAssignment,
  SplitVersion,
  Study,
};
export type { SplitRatios } from './split-version.entity';

/** Every entity, for the one DataSource. */
export const ENTITIES = [
  Site,
  Patient,
  Study,
  Series,
  Instance,
  Joint,
  JointImage,
  Reader,
  GradingFeature,
  Reading,
  Adjudication,
  ReferenceImport,
  ReferenceGrade,
  SplitVersion,
  SplitAssignment,
  ApiToken,
  AuditEvent,
  CellExposure,
  NodeSecret,
  ModelVersion,
  Prediction,
  InferenceJob,
  FederationTask,
  FederationSiteTask,
  FederationResult,
  FederationNonce,
  FederationSiteContact,
  FederationInboxTask,
  FederationReleasePolicy,
  FederationReleasedPopulation,
  FederatedInferenceProgress,
  FederatedInferenceRun,
];
