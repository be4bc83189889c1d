/** The one catalogue of error codes a client can see in `extensions.code` (GraphQL and every HTTP route). */
export enum ErrorCode {
  UNAUTHENTICATED = 'UNAUTHENTICATED',
  FORBIDDEN = 'FORBIDDEN',
  NOT_FOUND = 'NOT_FOUND',
  BAD_USER_INPUT = 'BAD_USER_INPUT',
  CONFLICT = 'CONFLICT',
  INTERNAL_SERVER_ERROR = 'INTERNAL_SERVER_ERROR',
  SPLIT_FROZEN = 'SPLIT_FROZEN',
  REFERENCE_LOCKED = 'REFERENCE_LOCKED',
  READER_BLINDED = 'READER_BLINDED',
  /** The reader has seen other grades of the cell, so they can no longer be one of its two independent readers. */
  READER_NOT_INDEPENDENT = 'READER_NOT_INDEPENDENT',
  MODEL_MANIFEST_MISMATCH = 'MODEL_MANIFEST_MISMATCH',
  JOB_NOT_CANCELLABLE = 'JOB_NOT_CANCELLABLE',
  /** Predictions imported into a model version with an ONNX file: its predictions come from its inference jobs only. */
  MODEL_VERSION_NOT_EXTERNAL = 'MODEL_VERSION_NOT_EXTERNAL',
  /** An import would change predictions a model version already has; predictions are immutable once written. */
  PREDICTIONS_IMMUTABLE = 'PREDICTIONS_IMMUTABLE',
  QUERY_TOO_COMPLEX = 'QUERY_TOO_COMPLEX',
  /** The request itself is malformed: a body that cannot be decoded or parsed, a broken multipart message. */
  BAD_REQUEST = 'BAD_REQUEST',
  /** The request body is larger than the route accepts. */
  PAYLOAD_TOO_LARGE = 'PAYLOAD_TOO_LARGE',
  /** A Content-Type, charset or Content-Encoding the route does not read. */
  UNSUPPORTED_MEDIA_TYPE = 'UNSUPPORTED_MEDIA_TYPE',
  /** No representation the request accepts can be made (an Accept header or `accept` parameter Facet cannot serve, pixel data it cannot render). */
  NOT_ACCEPTABLE = 'NOT_ACCEPTABLE',
  /** The database cannot be reached (restarting, refusing connections, out of connections); retry after a pause. */
  SERVICE_UNAVAILABLE = 'SERVICE_UNAVAILABLE',
  /** This deployment is a federation hub: it holds no patient-level data, so it takes none (DICOM, manifests, readings, inference). */
  HUB_HOLDS_NO_PATIENT_DATA = 'HUB_HOLDS_NO_PATIENT_DATA',
  /** A federation hub operation on a deployment that is not a hub (start it with `serve --hub` or FACET_MODE=hub). */
  NOT_A_HUB = 'NOT_A_HUB',
}
