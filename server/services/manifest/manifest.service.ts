import type { Db } from '../../db/transaction';
import { Role } from '../../domain';
import type { AuditService } from '../audit.service';
import type { ManifestResult } from '../import-result';
import type { NodeKeyService } from '../node-key.service';
import type { PatientService } from '../patient.service';
import type { ReadingService } from '../reading.service';
import { assertSiteInScope, requireRole, type RequestContext } from '../request-context';
import { JointImagesManifest } from './joint-images.manifest';
import { PatientsManifest } from './patients.manifest';
import { ReadingsManifest } from './readings.manifest';

/**
 * Cohort manifests: CSV files of patients, joint images and readings, one module per kind. A manifest lands whole
 * or not at all; the answer lists every rejected row with its line. Who may import is decided here, for every kind:
 * coordinators, into the sites in their scope.
 */
export class ManifestService {
  private readonly patientsManifest: PatientsManifest;
  private readonly jointImagesManifest: JointImagesManifest;
  private readonly readingsManifest: ReadingsManifest;

  constructor(db: Db, audit: AuditService, keys: NodeKeyService, patients: PatientService, readings: ReadingService) {
    this.patientsManifest = new PatientsManifest(db, audit, keys, patients);
    this.jointImagesManifest = new JointImagesManifest(db, audit, keys);
    this.readingsManifest = new ReadingsManifest(db, audit, keys, readings);
  }

  /** Each row names its site; a row of a site outside the caller's scope is rejected (SITE_OUT_OF_SCOPE). */
  async importPatients(ctx: RequestContext, csv: string): Promise<ManifestResult> {
    requireRole(ctx, Role.COORDINATOR);
    return this.patientsManifest.import(ctx, csv);
  }

  async importJointImages(ctx: RequestContext, siteId: string, csv: string): Promise<ManifestResult> {
    requireRole(ctx, Role.COORDINATOR);
    assertSiteInScope(ctx, siteId);
    return this.jointImagesManifest.import(ctx, siteId, csv);
  }

  async importReadings(ctx: RequestContext, siteId: string, csv: string): Promise<ManifestResult> {
    requireRole(ctx, Role.COORDINATOR);
    assertSiteInScope(ctx, siteId);
    return this.readingsManifest.import(ctx, siteId, csv);
  }
}
