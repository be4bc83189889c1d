import { Field, ID, Int, ObjectType } from 'type-graphql';
import { ReaderRole } from '../../server/domain';
import type { Reader } from '../../server/entities';
import { Connection } from './page-info.type';

@ObjectType('Reader', { description: 'A clinician, known by a code' })
export class ReaderType implements Pick<Reader, 'id' | 'code' | 'role' | 'yearsOfExperience' | 'siteId'> {
  @Field(() => ID)
  id: string;

  @Field()
  code: string;

  @Field(() => ReaderRole)
  role: ReaderRole;

  @Field(() => Int)
  yearsOfExperience: number;

  @Field(() => ID, { nullable: true })
  siteId: string | null;
}

@ObjectType('ReaderConnection')
export class ReaderConnection extends Connection(ReaderType) {}
