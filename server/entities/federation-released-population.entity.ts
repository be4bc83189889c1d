import { Column, Entity } from 'typeorm';
import { BaseRecord } from './base-record';

/**
 * The patients behind one group a node released to the hub (node-local patient ids; they never leave the node): what
 * the differencing guard (federation/differencing-guard.ts) compares a new task's groups with.
 */
@Entity()
export class FederationReleasedPopulation extends BaseRecord {
  /** The inbox task whose release held this group. */
  @Column({ type: 'uuid' })
  inboxTaskId: string;

  @Column({ type: 'uuid', array: true })
  patients: string[];
}
