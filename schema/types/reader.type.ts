import { Field, ID, Int, ObjectType } from 'type-graphql';
import { ReaderRole, ReaderSlot } from '../../server/domain';
import type { Reader } from '../../server/entities';
import { Connection } from './page-info.type';

@ObjectType('Reader', { description: 'A clinician, known by a code' })
export class ReaderType implements Pick<Reader, 'id' | 'code' | 'role' | 'yearsOfExperience' | 'siteId' | 'slot'> {
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

  @Field(() => ReaderSlot, { nullable: true, description: 'Reader 1 or 2 of the site; null for adjudicators, the senior group and extra readers' })
  slot: ReaderSlot | null;
}

@ObjectType('ReaderConnection')
export class ReaderConnection extends Connection(ReaderType) {}
