import { Field, Float, ID, Int, ObjectType } from 'type-graphql';
import { Split } from '../../server/domain';
import type { SplitAssignment, SplitRatios, SplitVersion } from '../../server/entities';
import { Connection } from './page-info.type';

@ObjectType('SplitRatios')
export class SplitRatiosType implements SplitRatios {
  @Field(() => Float)
  train: number;

  @Field(() => Float)
  validation: number;

  @Field(() => Float)
  test: number;
}

@ObjectType('SplitVersion', { description: 'A seeded, patient-level, site-stratified split; frozen ones never change' })
export class SplitVersionType implements Pick<SplitVersion, 'id' | 'name' | 'seed' | 'ratios' | 'stratification' | 'frozenAt' | 'createdAt'> {
  @Field(() => ID)
  id: string;

  @Field()
  name: string;

  @Field(() => String, { description: 'The seed, as a decimal string (it may exceed 2^31)' })
  seed: string;

  @Field(() => SplitRatiosType)
  ratios: SplitRatiosType;

  @Field()
  stratification: string;

  @Field(() => Date, { nullable: true })
  frozenAt: Date | null;

  @Field()
  createdAt: Date;
}

@ObjectType('SplitAssignment')
export class SplitAssignmentType implements Pick<SplitAssignment, 'id' | 'splitVersionId' | 'patientId' | 'split'> {
  @Field(() => ID)
  id: string;

  @Field(() => ID)
  splitVersionId: string;

  @Field(() => ID)
  patientId: string;

  @Field(() => Split)
  split: Split;
}

@ObjectType('SplitCount', { description: 'Patients of one site in one split' })
export class SplitCountType {
  @Field(() => ID)
  siteId: string;

  @Field(() => Split)
  split: Split;

  @Field(() => Int)
  patients: number;
}

@ObjectType('SplitVersionConnection')
export class SplitVersionConnection extends Connection(SplitVersionType) {}

@ObjectType('SplitAssignmentConnection')
export class SplitAssignmentConnection extends Connection(SplitAssignmentType) {}
