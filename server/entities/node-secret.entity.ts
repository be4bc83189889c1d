import { Column, CreateDateColumn, Entity, PrimaryColumn } from 'typeorm';

/** Secrets of this node, made once and shared by its server and worker processes (the UID and ID hashing key). */
@Entity()
export class NodeSecret {
  @PrimaryColumn({ type: 'varchar', length: 64 })
  name: string;

  @Column({ type: 'bytea' })
  value: Buffer;

  @CreateDateColumn({ type: 'timestamptz' })
  createdAt: Date;
}
