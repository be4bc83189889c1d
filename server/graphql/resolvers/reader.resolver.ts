import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root } from 'type-graphql';
import { ReaderFilterInput } from '../../../schema/inputs/filter.input';
import { PageArgs } from '../../../schema/inputs/page.args';
import { CreateReaderInput } from '../../../schema/inputs/reader.input';
import { ReaderConnection, ReaderType } from '../../../schema/types/reader.type';
import { ReadingType } from '../../../schema/types/reading.type';
import { SiteType } from '../../../schema/types/site.type';
import { ReaderSlot, Role } from '../../domain';
import type { Reader } from '../../entities';
import type { ReaderService } from '../../services';
import type { GraphQLContext } from '../context';

@Resolver(() => ReaderType)
export class ReaderResolver {
  constructor(private readonly readerService: ReaderService) {}

  @Authorized()
  @Query(() => ReaderConnection)
  readers(@Ctx() ctx: GraphQLContext, @Arg('filter', () => ReaderFilterInput, { nullable: true }) filter: ReaderFilterInput | null, @Args() page: PageArgs) {
    return this.readerService.listReaders(ctx, filter ?? {}, page);
  }

  @Authorized()
  @Query(() => ReaderType)
  reader(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.readerService.getReader(ctx, id);
  }

  @Authorized(Role.COORDINATOR)
  @Mutation(() => ReaderType)
  createReader(@Ctx() ctx: GraphQLContext, @Arg('input') input: CreateReaderInput) {
    return this.readerService.createReader(ctx, input);
  }

  @Authorized(Role.COORDINATOR)
  @Mutation(() => ReaderType, {
    description: 'Moves a reader to slot FIRST or SECOND of their site, or out of any (null); a slot held by another is a CONFLICT',
  })
  setReaderSlot(
    @Ctx() ctx: GraphQLContext,
    @Arg('readerId', () => ID) readerId: string,
    @Arg('slot', () => ReaderSlot, { nullable: true }) slot: ReaderSlot | null,
  ) {
    return this.readerService.setReaderSlot(ctx, readerId, slot ?? null);
  }

  @FieldResolver(() => SiteType, { nullable: true })
  site(@Root() reader: Reader, @Ctx() ctx: GraphQLContext) {
    return reader.siteId ? ctx.loaders.site.load(reader.siteId) : null;
  }

  @Authorized(Role.COORDINATOR, Role.READER)
  @FieldResolver(() => [ReadingType], { description: 'This reader’s readings you may see' })
  readings(@Root() reader: Reader, @Ctx() ctx: GraphQLContext) {
    return ctx.loaders.readingsByReader.load(reader.id);
  }
}
