import { Field, ID, Int, ObjectType } from 'type-graphql';
import { ExclusionReason, Level, Sex, Side } from '../../server/domain';
import type { Joint, Patient } from '../../server/entities';
import { Connection } from './page-info.type';

@ObjectType('Patient', { description: 'A de-identified participant: a pseudonym, never a name or hospital ID' })
export class PatientType implements Pick<Patient, 'id' | 'siteId' | 'pseudonym' | 'sex' | 'ageAtFirstImaging' | 'exclusionReasons'> {
  @Field(() => ID)
  id: string;

  @Field(() => ID)
  siteId: string;

  @Field()
  pseudonym: string;

  @Field(() => Sex)
  sex: Sex;

  @Field(() => Int, { nullable: true })
  ageAtFirstImaging: number | null;

  @Field(() => [ExclusionReason])
  exclusionReasons: ExclusionReason[];
}

@ObjectType('Joint', { description: 'One facet joint: a level and a side of one patient' })
export class JointType implements Pick<Joint, 'id' | 'patientId' | 'level' | 'side'> {
  @Field(() => ID)
  id: string;

  @Field(() => ID)
  patientId: string;

  @Field(() => Level)
  level: Level;

  @Field(() => Side)
  side: Side;
}

@ObjectType('PatientConnection')
export class PatientConnection extends Connection(PatientType) {}

@ObjectType('JointConnection')
export class JointConnection extends Connection(JointType) {}
