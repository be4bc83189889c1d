import { Arg, Args, Authorized, Ctx, FieldResolver, ID, Mutation, Query, Resolver, Root, Subscription } from 'type-graphql';
import { PageArgs } from '../../../schema/inputs/page.args';
import { InferenceJobConnection, InferenceJobType } from '../../../schema/types/job.type';
import { Modality, Role } from '../../domain';
import type { InferenceJob } from '../../entities';
import type { InferenceService } from '../../services';
import type { GraphQLContext } from '../context';

@Resolver(() => InferenceJobType)
export class JobResolver {
  constructor(private readonly inferenceService: InferenceService) {}

  @Authorized(Role.ENGINEER)
  @Mutation(() => InferenceJobType, { description: 'Queue an inference job of an ONNX model version over the joint images in scope' })
  startInferenceJob(
    @Ctx() ctx: GraphQLContext,
    @Arg('modelVersionId', () => ID) modelVersionId: string,
    @Arg('siteIds', () => [ID], { nullable: true }) siteIds: string[] | null,
    @Arg('modalities', () => [Modality], { nullable: true }) modalities: Modality[] | null,
  ) {
    return this.inferenceService.startInferenceJob(ctx, { modelVersionId, siteIds, modalities });
  }

  @Authorized(Role.ENGINEER)
  @Mutation(() => InferenceJobType, { description: 'Stop a queued or running job (honoured between batches)' })
  cancelJob(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.inferenceService.cancelJob(ctx, id);
  }

  @Authorized(Role.ENGINEER, Role.STATISTICIAN)
  @Query(() => InferenceJobConnection)
  jobs(@Ctx() ctx: GraphQLContext, @Args() page: PageArgs) {
    return this.inferenceService.listJobs(ctx, page);
  }

  @Authorized(Role.ENGINEER, Role.STATISTICIAN)
  @Query(() => InferenceJobType)
  job(@Ctx() ctx: GraphQLContext, @Arg('id', () => ID) id: string) {
    return this.inferenceService.getJob(ctx, id);
  }

  @Subscription(() => InferenceJobType, {
    subscribe: ({ args, context }) => (context as GraphQLContext).streams.jobProgress((args as { jobId: string }).jobId),
    description: 'The current state of a job at once, then its status and progress as any worker of the node runs it (PostgreSQL LISTEN/NOTIFY)',
  })
  jobProgress(@Root() job: InferenceJob, @Arg('jobId', () => ID) _jobId: string): InferenceJob {
    return job;
  }

  @Subscription(() => InferenceJobType, {
    name: 'jobs',
    subscribe: ({ args, context }) => (context as GraphQLContext).streams.siteJobs((args as { siteId?: string | null }).siteId ?? null),
    description:
      "Jobs whose scope covers a site (all jobs without siteId): the queued and running ones at once, then each one's status and progress as workers run them",
  })
  siteJobs(@Root() job: InferenceJob, @Arg('siteId', () => ID, { nullable: true }) _siteId: string | null): InferenceJob {
    return job;
  }

  @FieldResolver(() => Number, { nullable: true })
  rate(@Root() job: InferenceJob): number | null {
    const seconds = job.startedAt ? ((job.finishedAt ?? new Date()).getTime() - job.startedAt.getTime()) / 1000 : 0;
    return seconds > 0 ? (job.done + job.failed) / seconds : null;
  }

  @FieldResolver(() => Number, { nullable: true })
  etaSeconds(@Root() job: InferenceJob): number | null {
    const rate = this.rate(job);
    return rate ? (job.total - job.done - job.failed) / rate : null;
  }
}
