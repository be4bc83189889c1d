import { Field, ID, Int, ObjectType } from 'type-graphql';
import { Modality, ReferenceSource } from '../../server/domain';
import type { Adjudication, Reading, ReferenceGrade } from '../../server/entities';
import { Connection } from './page-info.type';

@ObjectType('Reading', { description: 'One reader’s independent grade of a joint x modality x feature' })
export class ReadingType implements Pick<Reading, 'id' | 'jointId' | 'modality' | 'feature' | 'grade' | 'notAssessable' | 'readerId' | 'createdAt'> {
  @Field(() => ID)
  id: string;

  @Field(() => ID)
  jointId: string;

  @Field(() => Modality)
  modality: Modality;

  @Field()
  feature: string;

  @Field(() => Int, { nullable: true, description: 'Null when not assessable' })
  grade: number | null;

  @Field()
  notAssessable: boolean;

  @Field(() => ID)
  readerId: string;

  @Field()
  createdAt: Date;
}

@ObjectType('Adjudication', { description: 'An experienced reader’s decision on a disagreement' })
export class AdjudicationType implements Pick<
  Adjudication,
  'id' | 'jointId' | 'modality' | 'feature' | 'grade' | 'notAssessable' | 'adjudicatorId' | 'rationale' | 'createdAt'
> {
  @Field(() => ID)
  id: string;

  @Field(() => ID)
  jointId: string;

  @Field(() => Modality)
  modality: Modality;

  @Field()
  feature: string;

  @Field(() => Int, { nullable: true })
  grade: number | null;

  @Field()
  notAssessable: boolean;

  @Field(() => ID)
  adjudicatorId: string;

  @Field()
  rationale: string;

  @Field()
  createdAt: Date;
}

@ObjectType('ReferenceGrade', { description: 'The reference standard for a joint x modality x feature' })
export class ReferenceGradeType implements Pick<
  ReferenceGrade,
  | 'id'
  | 'jointId'
  | 'modality'
  | 'feature'
  | 'grade'
  | 'notAssessable'
  | 'source'
  | 'confirmedById'
  | 'confirmedAt'
  | 'revisedById'
  | 'revisedAt'
  | 'previousGrade'
  | 'previousNotAssessable'
  | 'previousSource'
  | 'importId'
> {
  @Field(() => ID)
  id: string;

  @Field(() => ID)
  jointId: string;

  @Field(() => Modality)
  modality: Modality;

  @Field()
  feature: string;

  @Field(() => Int, { nullable: true })
  grade: number | null;

  @Field()
  notAssessable: boolean;

  @Field(() => ReferenceSource)
  source: ReferenceSource;

  @Field(() => ID, { nullable: true })
  confirmedById: string | null;

  @Field(() => Date, { nullable: true, description: 'Set when the senior group confirmed it; a confirmed grade is locked' })
  confirmedAt: Date | null;

  @Field(() => ID, { nullable: true, description: 'Who last revised it (source REVISED)' })
  revisedById: string | null;

  @Field(() => Date, { nullable: true })
  revisedAt: Date | null;

  @Field(() => Int, { nullable: true, description: 'The grade the last revision replaced (null when it was not assessable, or never revised)' })
  previousGrade: number | null;

  @Field(() => Boolean, { nullable: true, description: 'Whether the value the last revision replaced was not assessable' })
  previousNotAssessable: boolean | null;

  @Field(() => ReferenceSource, { nullable: true, description: 'How the value the last revision replaced came about' })
  previousSource: ReferenceSource | null;

  @Field(() => ID, { nullable: true, description: 'The reference-standard file it came from (see import); null for the reading workflow' })
  importId: string | null;
}

@ObjectType('AdjudicationQueueItem', { description: 'A joint x modality x feature whose two readers disagree, not yet adjudicated' })
export class AdjudicationQueueItemType {
  @Field(() => ID)
  id: string;

  @Field(() => ID)
  jointId: string;

  @Field(() => Modality)
  modality: Modality;

  @Field()
  feature: string;

  @Field(() => [ReadingType])
  readings: ReadingType[];
}

@ObjectType('ReadingConnection')
export class ReadingConnection extends Connection(ReadingType) {}

@ObjectType('AdjudicationConnection')
export class AdjudicationConnection extends Connection(AdjudicationType) {}

@ObjectType('ReferenceGradeConnection')
export class ReferenceGradeConnection extends Connection(ReferenceGradeType) {}

@ObjectType('AdjudicationQueueConnection')
export class AdjudicationQueueConnection extends Connection(AdjudicationQueueItemType) {}
