import { Length, Matches } from 'class-validator';
import { Field, InputType } from 'type-graphql';
import type { Site } from '../../server/entities';
import { CODE } from './code';

@InputType('CreateSiteInput')
export class CreateSiteInput implements Pick<Site, 'code' | 'name'> {
  @Field()
  @Length(1, 32)
  @Matches(CODE, { message: 'code may hold letters, digits, - and _ only' })
  code: string;

  @Field()
  @Length(1, 200)
  name: string;
}
