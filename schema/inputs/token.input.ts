import { IsOptional, IsUUID, Length } from 'class-validator';
import { Field, ID, InputType } from 'type-graphql';
import { Role } from '../../server/domain';

@InputType('CreateApiTokenInput')
export class CreateApiTokenInput {
  @Field()
  @Length(1, 100)
  name: string;

  @Field(() => Role)
  role: Role;

  @Field(() => ID, { nullable: true, description: 'Required for COORDINATOR; READER defaults to the reader’s site' })
  @IsOptional()
  @IsUUID()
  siteId?: string | null;

  @Field(() => ID, { nullable: true, description: 'Required for READER' })
  @IsOptional()
  @IsUUID()
  readerId?: string | null;

  @Field(() => Date, {
    nullable: true,
    description: 'From this instant the token authenticates nothing and its open subscriptions end; default: until revoked',
  })
  expiresAt?: Date | null;
}
