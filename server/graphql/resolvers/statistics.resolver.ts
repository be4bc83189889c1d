import { Arg, Authorized, Ctx, Query, Resolver } from 'type-graphql';
import { HubRunInput } from '../../../schema/inputs/federation-hub.input';
import { CompareInput, MetricsInput, MetricsScopeInput } from '../../../schema/inputs/metrics.input';
import { AgreementGroupType, ComparisonResultType, MetricsResultType, StudyFlowType } from '../../../schema/types/metrics.type';
import { Role } from '../../domain';
import type { AgreementService, HubStatisticsService, MetricsService } from '../../services';
import type { GraphQLContext } from '../context';

@Resolver()
export class StatisticsResolver {
  constructor(
    private readonly metricsService: MetricsService,
    private readonly agreementService: AgreementService,
    /** At a hub, metrics and studyFlow are answered by the member sites (services/federation-hub/hub-statistics.service.ts). */
    private readonly hubStatistics: HubStatisticsService,
  ) {}

  @Authorized(Role.STATISTICIAN, Role.COORDINATOR, Role.ENGINEER)
  @Query(() => MetricsResultType, { description: 'A rater against the reference standard, grouped, with the pooled row' })
  async metrics(
    @Ctx() ctx: GraphQLContext,
    @Arg('input') input: MetricsInput,
    @Arg('federation', () => HubRunInput, { nullable: true, description: 'At a hub: which sites, how long to wait, reuse' }) federation: HubRunInput | null,
  ) {
    if (this.hubStatistics.active) return this.hubStatistics.metrics(ctx, input, federation ?? {});
    this.hubStatistics.checkNodeRater(input.rater);
    const result = await this.metricsService.metrics(ctx, input);
    return { ...result, groups: result.groups.map((g) => ({ ...g, ...g.key, patients: g.clusters })) };
  }

  @Authorized(Role.STATISTICIAN, Role.COORDINATOR, Role.ENGINEER)
  @Query(() => ComparisonResultType, { description: 'Model minus each reader with paired intervals and p-values' })
  async compare(@Ctx() ctx: GraphQLContext, @Arg('input') input: CompareInput) {
    if (this.hubStatistics.active) this.hubStatistics.refuseAtHub('compare');
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
    if (this.hubStatistics.active) this.hubStatistics.refuseAtHub('agreement');
    return this.agreementService.agreement(ctx, scope ?? {}, bySite);
  }

  @Authorized(Role.STATISTICIAN, Role.COORDINATOR, Role.ENGINEER)
  @Query(() => [StudyFlowType], { description: 'STARD counts per site and in total (the last row)' })
  studyFlow(
    @Ctx() ctx: GraphQLContext,
    @Arg('scope', () => MetricsScopeInput, { nullable: true }) scope: MetricsScopeInput | null,
    @Arg('federation', () => HubRunInput, { nullable: true, description: 'At a hub: which sites, how long to wait, reuse' }) federation: HubRunInput | null,
  ) {
    if (this.hubStatistics.active) return this.hubStatistics.studyFlow(ctx, scope ?? {}, federation ?? {});
    return this.agreementService.studyFlow(ctx, scope ?? {});
  }
}
