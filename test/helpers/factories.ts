import { ExclusionReason, ReaderRole, Role } from '../../server/domain';
import type { Joint, Patient, Reader, Site } from '../../server/entities';
import { systemContext, type Services } from '../../server/services';

/** Builds study data through the real services, as an ADMIN of the node would. */
export class Factory {
  private counter = 0;
  readonly admin = systemContext('test factory');

  constructor(private readonly services: Services) {}

  private next(prefix: string): string {
    return `${prefix}${++this.counter}`;
  }

  site(code = this.next('S')): Promise<Site> {
    return this.services.sites.createSite(this.admin, { code, name: `Site ${code}` });
  }

  reader(site: Site | null, role: ReaderRole = ReaderRole.READER): Promise<Reader> {
    return this.services.readers.createReader(this.admin, { code: this.next('RD'), role, yearsOfExperience: 5, siteId: site?.id ?? null });
  }

  patient(site: Site, exclusionReasons: ExclusionReason[] = [], pseudonym = this.next('P')): Promise<Patient> {
    return this.services.patients.createPatient(this.admin, { siteId: site.id, pseudonym, exclusionReasons });
  }

  async joints(patient: Patient): Promise<Joint[]> {
    return this.services.patients.jointsByPatientIds(this.admin, [patient.id]);
  }

  async token(role: Role, options: { site?: Site | null; reader?: Reader | null } = {}): Promise<string> {
    const { secret } = await this.services.tokens.createApiToken(this.admin, {
      name: this.next('token'),
      role,
      siteId: role === Role.READER ? null : (options.site?.id ?? null),
      readerId: options.reader?.id ?? null,
    });
    return secret;
  }

  /** A reader at `site` and a READER token acting as them. */
  async readerWithToken(site: Site, role: ReaderRole = ReaderRole.READER): Promise<{ reader: Reader; token: string }> {
    const reader = await this.reader(site, role);
    return { reader, token: await this.token(Role.READER, { reader }) };
  }
}
