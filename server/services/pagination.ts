import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import type { PageRequest } from '../domain';
import { badInput } from '../errors/app-error';
import { isUuid } from './ids';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

export interface Page<T> {
  nodes: T[];
  pageInfo: { endCursor: string | null; hasNextPage: boolean };
  /** Counted when first read: a GraphQL query that does not ask for `totalCount` never pays for the count. */
  readonly totalCount: Promise<number>;
}

/** A page whose count query runs on the first read of `totalCount` (once), on the filtered query before paging. */
function pageOf<T extends ObjectLiteral>(qb: SelectQueryBuilder<T>, nodes: T[], pageInfo: Page<T>['pageInfo']): Page<T> {
  let counted: Promise<number> | null = null;
  const countable = qb.clone();
  return Object.defineProperty({ nodes, pageInfo } as Page<T>, 'totalCount', {
    enumerable: true,
    get: () => (counted ??= countable.getCount()),
  });
}

const encodeCursor = (id: string): string => Buffer.from(id, 'utf8').toString('base64url');

function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!isUuid(id)) {
    throw badInput('The cursor is not one this API issued', { argument: 'after' });
  }
  return id;
}

function pageSize(page: PageRequest): number {
  const first = page.first ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
    throw badInput(`first must be between 1 and ${MAX_PAGE_SIZE}`, { argument: 'first' });
  }
  return first;
}

/**
 * Keyset pagination on the row id: stable under concurrent inserts, O(page) at any depth (no OFFSET).
 * `totalCount` is counted on the filtered query before the cursor applies, when asked for.
 */
export async function paginate<T extends ObjectLiteral>(qb: SelectQueryBuilder<T>, alias: string, page: PageRequest = {}): Promise<Page<T>> {
  const first = pageSize(page);
  const paged = qb
    .clone()
    .orderBy(`${alias}.id`, 'ASC')
    .take(first + 1);
  if (page.after) paged.andWhere(`${alias}.id > :afterId`, { afterId: decodeCursor(page.after) });
  const rows = await paged.getMany();
  const nodes = rows.slice(0, first);
  return pageOf(qb, nodes, { endCursor: nodes.length ? encodeCursor(nodes[nodes.length - 1].id) : null, hasNextPage: rows.length > first });
}

const SEQUENCE_CURSOR = /^seq:(\d{1,19})$/;

/**
 * Keyset pagination newest first on a bigserial column (`seq`, a string as pg returns bigints): rows written later
 * come first, rows of one transaction in reverse insertion order. A cursor names the last row's sequence number,
 * so rows written after the first page was read never shift or repeat the pages that follow. Numbers are drawn at
 * insert, not commit: a transaction still open while a client pages through may commit rows numbered below the
 * cursor, which a fresh listing shows in their place.
 */
export async function paginateNewestFirst<T extends ObjectLiteral & { seq: string }>(
  qb: SelectQueryBuilder<T>,
  alias: string,
  page: PageRequest = {},
): Promise<Page<T>> {
  const first = pageSize(page);
  const paged = qb
    .clone()
    .orderBy(`${alias}.seq`, 'DESC')
    .take(first + 1);
  if (page.after) {
    const match = SEQUENCE_CURSOR.exec(Buffer.from(page.after, 'base64url').toString('utf8'));
    if (!match) throw badInput('The cursor is not one this API issued', { argument: 'after' });
    paged.andWhere(`${alias}.seq < :beforeSeq`, { beforeSeq: match[1] });
  }
  const rows = await paged.getMany();
  const nodes = rows.slice(0, first);
  const last = nodes[nodes.length - 1];
  return pageOf(qb, nodes, { endCursor: last ? Buffer.from(`seq:${last.seq}`, 'utf8').toString('base64url') : null, hasNextPage: rows.length > first });
}
