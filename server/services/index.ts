import type { DataSource } from 'typeorm';
import { Db } from '../db/transaction';
import { AuditService } from './audit.service';
import { GradingService } from './grading.service';
import { ImagingService } from './imaging.service';
import { PatientService } from './patient.service';
import { ReaderService } from './reader.service';
import { ReadingService } from './reading.service';
import { ReferenceService } from './reference.service';
import { SiteService } from './site.service';
import { SplitService } from './split.service';
import { TokenService } from './token.service';

/** Every service of a node, built once over one DataSource. The composition root hands them to resolvers. */
export function createServices(dataSource: DataSource) {
  const db = new Db(dataSource);
  const audit = new AuditService(db);
  const grading = new GradingService(db);
  const sites = new SiteService(db, audit);
  const readers = new ReaderService(db, audit);
  const patients = new PatientService(db, audit);
  const imaging = new ImagingService(db, audit);
  const readings = new ReadingService(db, audit, grading, patients, readers);
  const references = new ReferenceService(db, audit, grading, readers);
  const splits = new SplitService(db, audit);
  const tokens = new TokenService(db, audit);
  return { db, audit, grading, sites, readers, patients, imaging, readings, references, splits, tokens };
}

export type Services = ReturnType<typeof createServices>;

export { AuditService, GradingService, ImagingService, PatientService, ReaderService, ReadingService, ReferenceService, SiteService, SplitService, TokenService };
export * from './request-context';
export type { Page } from './pagination';
