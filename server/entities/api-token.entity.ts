import { Column, Entity, Index, JoinColumn, ManyToOne } from 'typeorm';
import { Role } from '../domain';
import { BaseRecord } from './base-record';
import { Reader } from './reader.entity';
import { Site } from './site.entity';

/** A bearer token. Only its sha256 is stored; the secret is shown once, at creation. */
@Entity()
export class ApiToken extends BaseRecord {
  @Column({ type: 'varchar', length: 100 })
  name: string;

  @Index({ unique: true })
  @Column({ type: 'char', length: 64 })
  tokenHash: string;

  @Column({ type: 'enum', enum: Role, enumName: 'role' })
  role: Role;

  /** The one site a COORDINATOR or READER token is scoped to. */
  @Column({ type: 'uuid', nullable: true })
  siteId: string | null;

  @ManyToOne(() => Site, { onDelete: 'RESTRICT', nullable: true })
  @JoinColumn()
  site?: Site | null;

  /** The reader a READER token acts as. */
  @Column({ type: 'uuid', nullable: true })
  readerId: string | null;

  @ManyToOne(() => Reader, { onDelete: 'RESTRICT', nullable: true })
  @JoinColumn()
  reader?: Reader | null;

  @Column({ type: 'timestamptz', nullable: true })
  revokedAt: Date | null;

  /** From this instant the token authenticates nothing; null: until revoked. */
  @Column({ type: 'timestamptz', nullable: true })
  expiresAt: Date | null;
}
