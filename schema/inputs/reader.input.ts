import { IsInt, IsOptional, IsUUID, Length, Matches, Max, Min } from 'class-validator';
import { Field, ID, InputType, Int } from 'type-graphql';
import { ReaderRole, ReaderSlot } from '../../server/domain';
import { CODE } from './code';

@InputType('CreateReaderInput')
export class CreateReaderInput {
  @Field()
  @Length(1, 32)
  @Matches(CODE, { message: 'code may hold letters, digits, - and _ only' })
  code: string;

  @Field(() => ReaderRole)
  role: ReaderRole;

  @Field(() => Int)
  @IsInt()
  @Min(0)
  @Max(70)
  yearsOfExperience: number;

  @Field(() => ID, { nullable: true })
  @IsOptional()
  @IsUUID()
  siteId?: string | null;

  @Field(() => ReaderSlot, {
    nullable: true,
    description: 'Reader 1 or 2 of the site (READER role only); omitted, a READER takes the first free slot of the site, or none if both are taken',
  })
  slot?: ReaderSlot | null;
}
