import { Field, Int, ObjectType } from 'type-graphql';
import type { GradeDefinition } from '../../server/domain';
import type { GradingFeature } from '../../server/entities';

@ObjectType('Grade')
export class GradeType implements GradeDefinition {
  @Field(() => Int)
  grade: number;

  @Field()
  label: string;
}

@ObjectType('GradingFeature', { description: 'A feature of the grading scheme and its ordinal grades' })
export class GradingFeatureType implements Pick<GradingFeature, 'code' | 'label' | 'grades'> {
  @Field()
  code: string;

  @Field()
  label: string;

  @Field(() => [GradeType])
  grades: GradeType[];
}
