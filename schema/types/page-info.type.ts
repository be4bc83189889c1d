import { Field, Int, ObjectType, type ClassType } from 'type-graphql';

@ObjectType('PageInfo')
export class PageInfoType {
  @Field(() => String, { nullable: true, description: 'Pass as `after` to get the next page' })
  endCursor: string | null;

  @Field()
  hasNextPage: boolean;
}

/** A cursor connection of `Item`: nodes, page info and the total under the filter. */
export function Connection<Item extends object>(ItemType: ClassType<Item>) {
  @ObjectType()
  abstract class ConnectionType {
    @Field(() => [ItemType])
    nodes: Item[];

    @Field(() => PageInfoType)
    pageInfo: PageInfoType;

    @Field(() => Int)
    totalCount: number;
  }
  return ConnectionType;
}
