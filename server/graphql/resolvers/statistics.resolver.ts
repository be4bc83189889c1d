import { Arg, Authorized, Ctx, Query, Resolver } from 'type-graphql';
import { CompareInput, MetricsInput, MetricsScopeInput } from '../../../schema/inputs/metrics.input';
import { AgreementGroupType, ComparisonResultType, MetricsResultType, StudyFlowType } from '../../../schema/types/metrics.type';
import { Role } from '../../domain';
import type { AgreementService, MetricsService } from '../../services';
import type { GraphQLContext } from '../context';

@Resolver()
export class StatisticsResolver {
  constructor(
    private readonly metricsService: MetricsService,
    private readonly agreementService: AgreementService,
  ) {}

  @Authorized(Role.STATISTICIAN, Role.COORDINATOR, Role.ENGINEER)
  @Query(() => MetricsResultType, { description: 'A rater against the reference standard, grouped, with the pooled row' })
  async metrics(@Ctx() ctx: GraphQLContext, @Arg('input') input: MetricsInput) {
    const result = await this.metricsService.metrics(ctx, input);
    return { ...result, groups: result.groups.map((g) => ({ ...g, ...g.key, patients: g.clusters })) };
  }

  @Authorized(Role.STATISTICIAN, Role.COORDINATOR, Role.ENGINEER)
  @Query(() => ComparisonResultType, { description: 'Model minus each reader with paired intervals and p-values' })
  async compare(@Ctx() ctx: GraphQLContext, @Arg('input') input: CompareInput) {
    const result = await this.metricsService.compare(ctx, input);
    return { ...result, comparisons: result.comparisons.map((c) => ({ ...c, ...c.key })) };
  }

  @Authorized(Role.STATISTICIAN, Role.COORDINATOR, Role.ENGINEER)
  @Query(() => [AgreementGroupType], {
    description: 'Reader vs reader and reader vs reference kappa, agreement and adjudication rate per feature x modality (x site)',
  })
  agreement(
    @Ctx() ctx: GraphQLContext,
    @Arg('scope', () => MetricsScopeInput, { nullable: true }) scope: MetricsScopeInput | null,
    @Arg('bySite', { defaultValue: true }) bySite: boolean,
  ) {
    return this.agreementService.agreement(ctx, scope ?? {}, bySite);
  }

  @Authorized(Role.STATISTICIAN, Role.COORDINATOR, Role.ENGINEER)
  @Query(() => [StudyFlowType], { description: 'STARD counts per site and in total (the last row)' })
  studyFlow(@Ctx() ctx: GraphQLContext, @Arg('scope', () => MetricsScopeInput, { nullable: true }) scope: MetricsScopeInput | null) {
    return this.agreementService.studyFlow(ctx, scope ?? {});
  }
}
