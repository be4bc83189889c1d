import { Field, ID, Int, ObjectType } from 'type-graphql';
import { ReferenceSource } from '../../server/domain';
import type { ReferenceImport } from '../../server/entities';
import { RejectedItemType } from './ingest.type';
import { Connection } from './page-info.type';

@ObjectType('ReferenceImport', {
  description: 'A reference-standard file established outside the reading workflow: what arrived, from whom, when, and who confirmed it',
})
export class ReferenceImportType implements Pick<ReferenceImport, 'id' | 'sha256' | 'rows' | 'created' | 'replaced' | 'sources' | 'importedBy'> {
  @Field(() => ID)
  id: string;

  @Field({ description: 'sha256 of the file (UTF-8 bytes as sent)' })
  sha256: string;

  @Field(() => Int, { description: 'Data rows of the file' })
  rows: number;

  @Field(() => Int, { description: 'Cells that had no reference grade' })
  created: number;

  @Field(() => Int, { description: 'Cells whose unconfirmed AGREEMENT or ADJUDICATION grade the file replaced' })
  replaced: number;

  @Field(() => [ReferenceSource], { description: 'The sources the file names' })
  sources: ReferenceSource[];

  @Field({ description: 'The name of the token that imported it' })
  importedBy: string;

  @Field({ description: 'When it was imported' })
  importedAt: Date;
}

@ObjectType('ReferenceConfirmation', { description: 'The grades of an import one senior confirmed at one site' })
export class ReferenceConfirmationType {
  @Field(() => ID)
  siteId: string;

  @Field(() => ID)
  confirmedById: string;

  @Field({ description: 'The last of these confirmations' })
  confirmedAt: Date;

  @Field(() => Int)
  grades: number;
}

@ObjectType('ReferenceImportResult', { description: 'A reference-standard file lands whole or not at all' })
export class ReferenceImportResultType {
  @Field({ description: 'True when every row landed (or the same file had landed before); false when any was rejected (then none landed)' })
  stored: boolean;

  @Field(() => Int, { description: 'Data rows read' })
  rows: number;

  @Field(() => Int, { description: 'New reference grades' })
  created: number;

  @Field(() => Int, { description: 'Unconfirmed AGREEMENT or ADJUDICATION grades replaced' })
  updated: number;

  @Field(() => [RejectedItemType])
  rejected: RejectedItemType[];

  @Field(() => ReferenceImportType, { nullable: true, description: 'The import (the earlier one for the same file); null when rejected' })
  import: ReferenceImportType | null;
}

@ObjectType('ReferenceImportConnection')
export class ReferenceImportConnection extends Connection(ReferenceImportType) {}
