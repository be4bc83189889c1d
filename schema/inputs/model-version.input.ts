import { IsOptional, Length } from 'class-validator';
import { Field, InputType } from 'type-graphql';

@InputType('RegisterExternalModelInput')
export class RegisterExternalModelInput {
  @Field()
  @Length(1, 100)
  name: string;

  @Field()
  @Length(1, 50)
  version: string;

  @Field(() => String, { nullable: true })
  @IsOptional()
  @Length(0, 2000)
  description?: string | null;
}
