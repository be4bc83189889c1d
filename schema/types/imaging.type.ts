import { Field, ID, Int, ObjectType } from 'type-graphql';
import { Modality } from '../../server/domain';
import type { Instance, JointImage, Series, Study } from '../../server/entities';
import { Connection } from './page-info.type';

@ObjectType('Study', { description: 'A DICOM study; UIDs are the replaced (de-identified) ones' })
export class StudyType implements Pick<Study, 'id' | 'patientId' | 'studyInstanceUid' | 'studyDate' | 'description'> {
  @Field(() => ID)
  id: string;

  @Field(() => ID)
  patientId: string;

  @Field()
  studyInstanceUid: string;

  @Field(() => String, { nullable: true, description: 'Shifted by the patient’s de-identification offset' })
  studyDate: string | null;

  @Field(() => String, { nullable: true })
  description: string | null;
}

@ObjectType('Series')
export class SeriesType implements Pick<Series, 'id' | 'studyId' | 'seriesInstanceUid' | 'modality' | 'seriesNumber' | 'description'> {
  @Field(() => ID)
  id: string;

  @Field(() => ID)
  studyId: string;

  @Field()
  seriesInstanceUid: string;

  @Field(() => Modality)
  modality: Modality;

  @Field(() => Int, { nullable: true })
  seriesNumber: number | null;

  @Field(() => String, { nullable: true })
  description: string | null;
}

@ObjectType('Instance', { description: 'One stored, de-identified DICOM object' })
export class InstanceType implements Pick<
  Instance,
  | 'id'
  | 'seriesId'
  | 'sopInstanceUid'
  | 'sopClassUid'
  | 'instanceNumber'
  | 'rows'
  | 'columns'
  | 'numberOfFrames'
  | 'bitsAllocated'
  | 'samplesPerPixel'
  | 'photometricInterpretation'
  | 'transferSyntaxUid'
  | 'sha256'
  | 'sizeBytes'
> {
  @Field(() => ID)
  id: string;

  @Field(() => ID)
  seriesId: string;

  @Field()
  sopInstanceUid: string;

  @Field()
  sopClassUid: string;

  @Field(() => Int, { nullable: true })
  instanceNumber: number | null;

  @Field(() => Int)
  rows: number;

  @Field(() => Int)
  columns: number;

  @Field(() => Int)
  numberOfFrames: number;

  @Field(() => Int)
  bitsAllocated: number;

  @Field(() => Int)
  samplesPerPixel: number;

  @Field()
  photometricInterpretation: string;

  @Field()
  transferSyntaxUid: string;

  @Field()
  sha256: string;

  @Field(() => Number, { description: 'Size of the stored object in bytes' })
  sizeBytes: number;
}

@ObjectType('JointImage', { description: 'A frame of an instance that shows a joint, and the region of interest around it' })
export class JointImageType implements Pick<JointImage, 'id' | 'jointId' | 'instanceId' | 'frame' | 'roiX' | 'roiY' | 'roiWidth' | 'roiHeight'> {
  @Field(() => ID)
  id: string;

  @Field(() => ID)
  jointId: string;

  @Field(() => ID)
  instanceId: string;

  @Field(() => Int)
  frame: number;

  @Field(() => Int)
  roiX: number;

  @Field(() => Int)
  roiY: number;

  @Field(() => Int)
  roiWidth: number;

  @Field(() => Int)
  roiHeight: number;
}

@ObjectType('StudyConnection')
export class StudyConnection extends Connection(StudyType) {}

@ObjectType('SeriesConnection')
export class SeriesConnection extends Connection(SeriesType) {}

@ObjectType('InstanceConnection')
export class InstanceConnection extends Connection(InstanceType) {}

@ObjectType('JointImageConnection')
export class JointImageConnection extends Connection(JointImageType) {}
