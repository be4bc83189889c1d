import { ArrayMaxSize, ArrayMinSize, IsInt, IsOptional, IsUUID } from 'class-validator';
import { Field, ID, InputType, Int } from 'type-graphql';

@InputType('ReviseReferenceGradeInput')
export class ReviseReferenceGradeInput {
  @Field(() => ID)
  @IsUUID()
  id: string;

  @Field(() => Int, { nullable: true })
  @IsOptional()
  @IsInt()
  grade?: number | null;

  @Field(() => Boolean, { nullable: true })
  notAssessable?: boolean | null;
}

@InputType('ConfirmReferenceGradesInput')
export class ConfirmReferenceGradesInput {
  @Field(() => [ID])
  @ArrayMinSize(1)
  @ArrayMaxSize(1000)
  @IsUUID('all', { each: true })
  ids: string[];
}
