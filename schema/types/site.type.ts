import { Field, ID, ObjectType } from 'type-graphql';
import type { Site } from '../../server/entities';
import { Connection } from './page-info.type';

@ObjectType('Site', { description: 'A hospital or imaging center' })
export class SiteType implements Pick<Site, 'id' | 'code' | 'name' | 'createdAt'> {
  @Field(() => ID)
  id: string;

  @Field()
  code: string;

  @Field()
  name: string;

  @Field()
  createdAt: Date;
}

@ObjectType('SiteConnection')
export class SiteConnection extends Connection(SiteType) {}
