import { ArrayMaxSize, ArrayMinSize, IsUUID } from 'class-validator';
import { Field, ID, InputType } from 'type-graphql';
import { GradeValueInput } from './reading.input';

@InputType('ReviseReferenceGradeInput')
export class ReviseReferenceGradeInput extends GradeValueInput {
  @Field(() => ID)
  @IsUUID()
  id: string;
}

@InputType('ConfirmReferenceGradesInput')
export class ConfirmReferenceGradesInput {
  @Field(() => [ID])
  @ArrayMinSize(1)
  @ArrayMaxSize(1000)
  @IsUUID('all', { each: true })
  ids: string[];
}
