import { IsInt, IsOptional, IsUUID, Max, Min, ValidateNested } from 'class-validator';
import { Field, Float, ID, InputType, Int, registerEnumType } from 'type-graphql';
import { ReaderRole } from '../../server/domain';
import { MetricsScopeInput } from './metrics.input';

/** The covariance estimators of the readers' AUCs, as MRMCaov names them (its DeLong, jackknife and unbiased). */
export enum MrmcCovariance {
  DELONG = 'DELONG',
  JACKKNIFE = 'JACKKNIFE',
  UNBIASED = 'UNBIASED',
}

registerEnumType(MrmcCovariance, {
  name: 'MrmcCovariance',
  description:
    'Covariance of the reader x test AUCs: DeLong placements, the jackknife over cases (patients when clustered), or the unbiased U-statistic estimator',
  valuesConfig: {
    DELONG: { description: 'DeLong et al. 1988; with clustered cases, Obuchowski 1997 (placements summed per patient)' },
    JACKKNIFE: { description: 'Leave one case (one patient when clustered) out; MRMCaov’s default' },
    UNBIASED: { description: 'Gallas, Pennello & Myers 2007; independent cases only (clustered: false)' },
  },
});

/** What the readers are measured by. */
export enum MrmcFigureOfMerit {
  AUC = 'AUC',
  SENSITIVITY = 'SENSITIVITY',
  SPECIFICITY = 'SPECIFICITY',
}

registerEnumType(MrmcFigureOfMerit, {
  name: 'MrmcFigureOfMerit',
  description:
    'The empirical AUC of the grades (the model: its score), or the sensitivity or specificity of the call grade >= threshold (the model: its argmax grade)',
});

@InputType('MrmcInput', {
  description:
    'A model version against the readers of a role as a group: Obuchowski-Rockette MRMC analysis with Hillis df, per feature and modality, pooled and per site',
})
export class MrmcInput {
  @Field(() => ID)
  @IsUUID()
  modelVersionId: string;

  @Field(() => ReaderRole, { nullable: true, description: 'The clinicians: every reader of this role (default READER)' })
  readerRole?: ReaderRole | null;

  @Field(() => MetricsScopeInput, { nullable: true })
  @IsOptional()
  @ValidateNested()
  scope?: MetricsScopeInput | null;

  @Field(() => Int, { nullable: true, description: 'Positive when the reference grade >= threshold (default 1); the model scores P(grade >= threshold)' })
  @IsOptional()
  @IsInt()
  @Min(1)
  threshold?: number | null;

  @Field(() => MrmcFigureOfMerit, { nullable: true, description: 'Default AUC' })
  figureOfMerit?: MrmcFigureOfMerit | null;

  @Field(() => MrmcCovariance, { nullable: true, description: 'Default JACKKNIFE (the only one for SENSITIVITY and SPECIFICITY)' })
  covariance?: MrmcCovariance | null;

  @Field(() => Boolean, { nullable: true, description: 'A patient’s joints form one case cluster (default true)' })
  clustered?: boolean | null;

  @Field(() => Float, { nullable: true, description: 'Confidence level (default 0.95)' })
  @IsOptional()
  @Min(0.5)
  @Max(0.999)
  level?: number | null;

  @Field(() => Boolean, { nullable: true, description: 'Only confirmed reference grades (default true)' })
  confirmedOnly?: boolean | null;

  @Field(() => Boolean, { nullable: true, description: 'Also one row per site (default true)' })
  bySite?: boolean | null;
}
