import { keyedHash } from '../dicom/uid';

/** Patient keys are HMACs of the hospital patient ID under the node key, purpose-separated from UIDs. */
const PATIENT_KEY_PURPOSE = 'patient-id';

/** The key a patient is found by (DICOM ingest, manifests), under the node key: the hospital patient ID itself is never stored. */
export function patientKeyOf(nodeKey: Buffer, patientId: string): string {
  return keyedHash(nodeKey, PATIENT_KEY_PURPOSE, patientId);
}
