import { CreateDateColumn, PrimaryGeneratedColumn, UpdateDateColumn } from 'typeorm';

/** Every row: a uuid and the moment it was written. */
export abstract class BaseRecord {
  @PrimaryGeneratedColumn('uuid')
  id: string;

  @CreateDateColumn({ type: 'timestamptz' })
  createdAt: Date;
}

/** Rows that may change after they are written also say when. */
export abstract class MutableRecord extends BaseRecord {
  @UpdateDateColumn({ type: 'timestamptz' })
  updatedAt: Date;
}

/** Postgres `bigint` arrives as a string from pg; sizes and counts here stay far below 2^53. */
export const bigintAsNumber = {
  to: (value: number | null | undefined) => value,
  from: (value: string | null) => (value == null ? null : Number(value)),
};
