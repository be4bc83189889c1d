import { GraphQLJSONObject } from 'graphql-scalars';
import { Field, ID, ObjectType } from 'type-graphql';
import { Role } from '../../server/domain';
import type { ApiToken, AuditEvent } from '../../server/entities';
import { Connection } from './page-info.type';

@ObjectType('ApiToken', { description: 'A bearer token; its secret is never shown again after creation' })
export class ApiTokenType implements Pick<ApiToken, 'id' | 'name' | 'role' | 'siteId' | 'readerId' | 'revokedAt' | 'expiresAt' | 'createdAt'> {
  @Field(() => ID)
  id: string;

  @Field()
  name: string;

  @Field(() => Role)
  role: Role;

  @Field(() => ID, { nullable: true })
  siteId: string | null;

  @Field(() => ID, { nullable: true })
  readerId: string | null;

  @Field(() => Date, { nullable: true })
  revokedAt: Date | null;

  @Field(() => Date, { nullable: true, description: 'From this instant the token authenticates nothing; null: until revoked' })
  expiresAt: Date | null;

  @Field()
  createdAt: Date;
}

@ObjectType('CreatedApiToken')
export class CreatedApiTokenType {
  @Field(() => ApiTokenType)
  token: ApiTokenType;

  @Field({ description: 'Send as `Authorization: Bearer <secret>`. Shown once.' })
  secret: string;
}

@ObjectType('AuditEvent', { description: 'Who did what, when; never holds PHI' })
export class AuditEventType implements Pick<
  AuditEvent,
  'id' | 'actorTokenId' | 'actorRole' | 'action' | 'entityType' | 'entityId' | 'siteId' | 'requestId' | 'clientRequestId' | 'details' | 'createdAt'
> {
  @Field(() => ID)
  id: string;

  @Field(() => ID, { nullable: true })
  actorTokenId: string | null;

  @Field(() => Role, { nullable: true })
  actorRole: Role | null;

  @Field()
  action: string;

  @Field()
  entityType: string;

  @Field(() => ID, { nullable: true })
  entityId: string | null;

  @Field(() => ID, { nullable: true })
  siteId: string | null;

  @Field({ description: 'The server’s own id of the request, also in its logs and its x-request-id response header' })
  requestId: string;

  @Field(() => String, { nullable: true, description: 'The x-request-id the client sent (printable, at most 64 characters), kept beside requestId' })
  clientRequestId: string | null;

  @Field(() => GraphQLJSONObject)
  details: Record<string, unknown>;

  @Field()
  createdAt: Date;
}

@ObjectType('ApiTokenConnection')
export class ApiTokenConnection extends Connection(ApiTokenType) {}

@ObjectType('AuditEventConnection')
export class AuditEventConnection extends Connection(AuditEventType) {}

@ObjectType('Viewer', { description: 'The caller, as its token describes it' })
export class ViewerType {
  @Field()
  name: string;

  @Field(() => Role)
  role: Role;

  @Field(() => ID, { nullable: true })
  siteId: string | null;

  @Field(() => ID, { nullable: true })
  readerId: string | null;
}
