import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import type { PageRequest } from '../domain';
import { badInput } from '../errors/app-error';

export const DEFAULT_PAGE_SIZE = 50;
export const MAX_PAGE_SIZE = 500;

export interface Page<T> {
  nodes: T[];
  pageInfo: { endCursor: string | null; hasNextPage: boolean };
  totalCount: number;
}

const encodeCursor = (id: string): string => Buffer.from(id, 'utf8').toString('base64url');

function decodeCursor(cursor: string): string {
  const id = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(id)) {
    throw badInput('The cursor is not one this API issued', { argument: 'after' });
  }
  return id;
}

/**
 * Keyset pagination on the row id: stable under concurrent inserts, O(page) at any depth (no OFFSET).
 * `totalCount` is counted on the filtered query before the cursor applies.
 */
export async function paginate<T extends ObjectLiteral>(qb: SelectQueryBuilder<T>, alias: string, page: PageRequest = {}): Promise<Page<T>> {
  const first = page.first ?? DEFAULT_PAGE_SIZE;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE_SIZE) {
    throw badInput(`first must be between 1 and ${MAX_PAGE_SIZE}`, { argument: 'first' });
  }
  const totalCount = await qb.clone().getCount();
  const paged = qb
    .clone()
    .orderBy(`${alias}.id`, 'ASC')
    .take(first + 1);
  if (page.after) paged.andWhere(`${alias}.id > :afterId`, { afterId: decodeCursor(page.after) });
  const rows = await paged.getMany();
  const nodes = rows.slice(0, first);
  return {
    nodes,
    pageInfo: { endCursor: nodes.length ? encodeCursor(nodes[nodes.length - 1].id) : null, hasNextPage: rows.length > first },
    totalCount,
  };
}
