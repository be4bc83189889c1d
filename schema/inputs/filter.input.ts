import { ArrayMaxSize, IsOptional, IsUUID, ValidateNested } from 'class-validator';
import { Field, ID, InputType } from 'type-graphql';
import {
  Level,
  Modality,
  ReaderRole,
  ReaderSlot,
  Side,
  Split,
  type GradeFilter,
  type ImagingFilter,
  type JointFilter,
  type JointImageFilter,
  type PatientFilter,
  type ReaderFilter,
  type ReadingFilter,
  type ReferenceGradeFilter,
  type SplitAssignmentFilter,
  type SplitSelector,
} from '../../server/domain';

/** Lists in filters are capped so one request cannot build an unbounded IN (...) clause. */
const MAX_LIST = 1000;

@InputType('SplitSelector', { description: 'Only patients assigned to this split under this split version' })
export class SplitSelectorInput implements SplitSelector {
  @Field(() => ID)
  @IsUUID()
  splitVersionId: string;

  @Field(() => Split)
  split: Split;
}

@InputType('PatientFilter')
export class PatientFilterInput implements PatientFilter {
  @Field(() => [ID], { nullable: true })
  @IsOptional()
  @IsUUID('all', { each: true })
  @ArrayMaxSize(MAX_LIST)
  siteIds?: string[] | null;

  @Field(() => Boolean, { nullable: true, description: 'true: no exclusion reason; false: excluded' })
  eligible?: boolean | null;

  @Field(() => SplitSelectorInput, { nullable: true })
  @IsOptional()
  @ValidateNested()
  split?: SplitSelectorInput | null;
}

@InputType('JointFilter')
export class JointFilterInput extends PatientFilterInput implements JointFilter {
  @Field(() => [ID], { nullable: true })
  @IsOptional()
  @IsUUID('all', { each: true })
  @ArrayMaxSize(MAX_LIST)
  patientIds?: string[] | null;

  @Field(() => [Level], { nullable: true })
  levels?: Level[] | null;

  @Field(() => [Side], { nullable: true })
  sides?: Side[] | null;
}

@InputType('GradeFilter')
export class GradeFilterInput extends JointFilterInput implements GradeFilter {
  @Field(() => [Modality], { nullable: true })
  modalities?: Modality[] | null;

  @Field(() => [String], { nullable: true, description: 'Grading feature codes, e.g. OSTEOPHYTES' })
  @IsOptional()
  @ArrayMaxSize(MAX_LIST)
  features?: string[] | null;
}

@InputType('ReadingFilter')
export class ReadingFilterInput extends GradeFilterInput implements ReadingFilter {
  @Field(() => [ID], { nullable: true })
  @IsOptional()
  @IsUUID('all', { each: true })
  @ArrayMaxSize(MAX_LIST)
  readerIds?: string[] | null;
}

@InputType('ReferenceGradeFilter')
export class ReferenceGradeFilterInput extends GradeFilterInput implements ReferenceGradeFilter {
  @Field(() => Boolean, { nullable: true })
  confirmed?: boolean | null;
}

@InputType('ImagingFilter')
export class ImagingFilterInput extends PatientFilterInput implements ImagingFilter {
  @Field(() => [ID], { nullable: true })
  @IsOptional()
  @IsUUID('all', { each: true })
  @ArrayMaxSize(MAX_LIST)
  patientIds?: string[] | null;

  @Field(() => [Modality], { nullable: true })
  modalities?: Modality[] | null;
}

@InputType('JointImageFilter')
export class JointImageFilterInput extends JointFilterInput implements JointImageFilter {
  @Field(() => [Modality], { nullable: true })
  modalities?: Modality[] | null;
}

@InputType('ReaderFilter')
export class ReaderFilterInput implements ReaderFilter {
  @Field(() => [ID], { nullable: true })
  @IsOptional()
  @IsUUID('all', { each: true })
  siteIds?: string[] | null;

  @Field(() => [ReaderRole], { nullable: true })
  roles?: ReaderRole[] | null;

  @Field(() => [ReaderSlot], { nullable: true })
  slots?: ReaderSlot[] | null;
}

@InputType('SplitAssignmentFilter')
export class SplitAssignmentFilterInput implements SplitAssignmentFilter {
  @Field(() => ID)
  @IsUUID()
  splitVersionId: string;

  @Field(() => [ID], { nullable: true })
  @IsOptional()
  @IsUUID('all', { each: true })
  siteIds?: string[] | null;

  @Field(() => [Split], { nullable: true })
  splits?: Split[] | null;
}
