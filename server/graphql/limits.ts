import {
  getNamedType,
  GraphQLError,
  isListType,
  isNonNullType,
  Kind,
  type ASTNode,
  type DocumentNode,
  type FragmentDefinitionNode,
  type GraphQLOutputType,
  type GraphQLSchema,
  type SelectionSetNode,
  type ValidationRule,
  validate,
} from 'graphql';
import { getComplexity, type ComplexityEstimator } from 'graphql-query-complexity';
import { ErrorCode } from '../domain';

function depthOf(selectionSet: SelectionSetNode | undefined, fragments: Map<string, FragmentDefinitionNode>, seen: Set<string>): number {
  if (!selectionSet) return 0;
  let deepest = 0;
  for (const selection of selectionSet.selections) {
    if (selection.kind === Kind.FIELD) {
      if (selection.name.value.startsWith('__')) continue;
      deepest = Math.max(deepest, 1 + depthOf(selection.selectionSet, fragments, seen));
    } else if (selection.kind === Kind.INLINE_FRAGMENT) {
      deepest = Math.max(deepest, depthOf(selection.selectionSet, fragments, seen));
    } else {
      const name = selection.name.value;
      const fragment = fragments.get(name);
      if (!fragment || seen.has(name)) continue;
      deepest = Math.max(deepest, depthOf(fragment.selectionSet, fragments, new Set(seen).add(name)));
    }
  }
  return deepest;
}

const limitError = (message: string, node: ASTNode) => new GraphQLError(message, { nodes: [node] });

/** Rejects operations nested deeper than `max` fields (fragments followed, introspection fields not counted). */
export function depthLimit(max: number): ValidationRule {
  return (context) => {
    const fragments = new Map(
      context
        .getDocument()
        .definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION)
        .map((d) => [d.name.value, d]),
    );
    return {
      OperationDefinition(operation) {
        const depth = depthOf(operation.selectionSet, fragments, new Set());
        if (depth > max) context.reportError(limitError(`The query is ${depth} levels deep; the limit is ${max}`, operation));
      },
    };
  };
}

/** Rejects documents with more than `max` aliased fields (aliases multiply the work of one request). */
export function aliasLimit(max: number): ValidationRule {
  return (context) => {
    let aliases = 0;
    return {
      Field(node) {
        if (node.alias && ++aliases === max + 1) context.reportError(limitError(`The query uses more than ${max} aliases`, node));
      },
    };
  };
}

/** Items a connection returns when the query gives no `first` (services/pagination.ts DEFAULT_PAGE_SIZE). */
const DEFAULT_FIRST = 50;
/** Assumed rows of a nested list without `first` (a patient's 10 joints, a joint's readings): a deliberate overestimate. */
const LIST_FAN_OUT = 10;

function isList(type: GraphQLOutputType): boolean {
  return isNonNullType(type) ? isList(type.ofType) : isListType(type);
}

/**
 * Cost of a field: a connection costs `first` times its nodes, a plain list LIST_FAN_OUT times its items, any
 * other field one plus its children. `sites(first: 500) { patients(first: 500) { … } }` costs 250,000 times
 * the patient selection and is refused before it runs.
 */
const costEstimator: ComplexityEstimator = ({ field, args, childComplexity, type }) => {
  const named = getNamedType(field.type).name;
  if (named.endsWith('Connection')) return (typeof args.first === 'number' ? args.first : DEFAULT_FIRST) * Math.max(1, childComplexity);
  if (field.name === 'nodes' && type.name.endsWith('Connection')) return 1 + childComplexity;
  if (isList(field.type)) return LIST_FAN_OUT * (1 + childComplexity);
  return 1 + childComplexity;
};

/** The estimated cost of one operation, with its variables (so `first: $n` counts). */
export function queryCost(schema: GraphQLSchema, document: DocumentNode, variables: Record<string, unknown> = {}, operationName?: string): number {
  return getComplexity({ schema, query: document, variables, operationName, estimators: [costEstimator] });
}

export interface QueryLimits {
  maxQueryDepth: number;
  maxAliases: number;
  maxQueryCost: number;
}

const tooComplex = (message: string, extensions: Record<string, unknown> = {}) =>
  new GraphQLError(message, { extensions: { code: ErrorCode.QUERY_TOO_COMPLEX, ...extensions, http: { status: 400 } } });

/**
 * Depth, aliases and estimated cost of a parsed, valid operation, checked before it runs. One check for both
 * transports (Apollo calls it when the operation is resolved, graphql-ws when it subscribes), so both answer
 * QUERY_TOO_COMPLEX. Variables that cannot be coerced are left to the executor, which answers BAD_USER_INPUT.
 */
export function assertQueryLimits(
  schema: GraphQLSchema,
  document: DocumentNode,
  limits: QueryLimits,
  variables: Record<string, unknown> = {},
  operationName?: string,
): void {
  // Apollo hands the same parsed document for the same query text, so a dashboard's repeated query is checked once
  // per operation name and variables (the verdict depends on nothing else), not walked twice on every request.
  let verdicts = checkedDocuments.get(document);
  if (!verdicts) checkedDocuments.set(document, (verdicts = new Map()));
  const key = JSON.stringify([operationName ?? null, variables, limits.maxQueryDepth, limits.maxAliases, limits.maxQueryCost]);
  let verdict = verdicts.get(key);
  if (verdict === undefined) {
    verdict = limitViolation(schema, document, limits, variables, operationName);
    if (verdicts.size >= VERDICTS_PER_DOCUMENT) verdicts.delete(verdicts.keys().next().value as string);
    verdicts.set(key, verdict);
  }
  if (verdict) throw tooComplex(verdict.message, verdict.extensions);
}

/** Verdicts kept per document (its distinct operation names and variables); the oldest go first. */
const VERDICTS_PER_DOCUMENT = 64;
const checkedDocuments = new WeakMap<DocumentNode, Map<string, { message: string; extensions?: Record<string, unknown> } | null>>();

function limitViolation(
  schema: GraphQLSchema,
  document: DocumentNode,
  limits: QueryLimits,
  variables: Record<string, unknown>,
  operationName: string | undefined,
): { message: string; extensions?: Record<string, unknown> } | null {
  const [limitError] = validate(schema, document, [depthLimit(limits.maxQueryDepth), aliasLimit(limits.maxAliases)]);
  if (limitError) return { message: limitError.message };
  let cost: number;
  try {
    cost = queryCost(schema, document, variables, operationName);
  } catch {
    return null;
  }
  if (cost > limits.maxQueryCost) {
    return {
      message: `The query's estimated cost is ${cost}; the limit is ${limits.maxQueryCost}. Ask for smaller pages or fewer nested lists.`,
      extensions: { cost, limit: limits.maxQueryCost },
    };
  }
  return null;
}
