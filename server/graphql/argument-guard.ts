import {
  getArgumentValues,
  getNamedType,
  getOperationAST,
  getVariableValues,
  GraphQLError,
  isInputObjectType,
  isListType,
  isNonNullType,
  TypeInfo,
  visit,
  visitWithTypeInfo,
  type DocumentNode,
  type GraphQLInputType,
  type GraphQLSchema,
} from 'graphql';
import { ErrorCode } from '../domain';

/** The canonical text form of a uuid; every `ID` this API takes names a row by its uuid primary key. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

interface Problem {
  /** Where in the argument: `filter.siteIds[2]`, `id`. */
  path: string;
  argument: string;
  rule: string;
}

/** Strings anywhere in a custom scalar's value (a JSON object) must be free of NUL too: PostgreSQL's jsonb refuses \u0000. */
function hasNul(value: unknown): boolean {
  if (typeof value === 'string') return value.includes('\0');
  if (Array.isArray(value)) return value.some(hasNul);
  if (value && typeof value === 'object' && !(value instanceof Date)) return Object.entries(value).some(([k, v]) => k.includes('\0') || hasNul(v));
  return false;
}

function inspect(type: GraphQLInputType, value: unknown, path: string, argument: string, problems: Problem[]): void {
  if (value === null || value === undefined) return;
  if (isNonNullType(type)) return inspect(type.ofType, value, path, argument, problems);
  if (isListType(type)) {
    if (Array.isArray(value)) value.forEach((item, i) => inspect(type.ofType, item, `${path}[${i}]`, argument, problems));
    else inspect(type.ofType, value, path, argument, problems);
    return;
  }
  if (isInputObjectType(type)) {
    const object = value as Record<string, unknown>;
    for (const field of Object.values(type.getFields())) inspect(field.type, object[field.name], `${path}.${field.name}`, argument, problems);
    return;
  }
  if (getNamedType(type).name === 'ID') {
    if (typeof value !== 'string' || !UUID.test(value)) problems.push({ path, argument, rule: `${path} must be a UUID` });
    return;
  }
  // PostgreSQL text, varchar and jsonb cannot hold U+0000; the query would fail with a server error.
  if (hasNul(value)) problems.push({ path, argument, rule: `${path} must not contain NUL characters` });
}

/** `filter.siteIds[2]` → `siteIds` (relative to the argument, as class-validator names properties); `id` → `id`. */
function propertyOf(problem: Problem): string {
  const withinArgument = problem.path.slice(problem.argument.length).replace(/^\./, '') || problem.argument;
  return withinArgument.replace(/\[\d+\]/g, '');
}

/**
 * Every argument of every field of the operation, before it runs: each `ID` must be a uuid and no string may hold
 * a NUL character. Such values would otherwise reach PostgreSQL, which refuses them with an error the client sees
 * as INTERNAL_SERVER_ERROR. One check for both transports (Apollo calls it when the operation is resolved,
 * graphql-ws when it subscribes), like the query limits; BAD_USER_INPUT in the shape of class-validator's errors.
 * Variables that cannot be coerced are left to the executor, which answers BAD_USER_INPUT itself.
 */
export function assertWellFormedArguments(
  schema: GraphQLSchema,
  document: DocumentNode,
  variables: Record<string, unknown> = {},
  operationName?: string,
): void {
  const operation = getOperationAST(document, operationName);
  if (!operation) return;
  const { coerced } = getVariableValues(schema, operation.variableDefinitions ?? [], variables, { maxErrors: 1 });
  if (!coerced) return;
  const problems: Problem[] = [];
  const typeInfo = new TypeInfo(schema);
  visit(
    document,
    visitWithTypeInfo(typeInfo, {
      OperationDefinition: (node) => (node === operation ? undefined : false),
      Field(node) {
        const field = typeInfo.getFieldDef();
        if (!field || !node.arguments?.length) return;
        let values: Record<string, unknown>;
        try {
          values = getArgumentValues(field, node, coerced);
        } catch {
          return; // a missing or uncoercible argument: validation or the executor reports it
        }
        for (const arg of field.args) inspect(arg.type, values[arg.name], arg.name, arg.name, problems);
      },
    }),
  );
  if (!problems.length) return;
  const [first] = problems;
  const byProperty = new Map<string, string[]>();
  for (const problem of problems) byProperty.set(propertyOf(problem), [...(byProperty.get(propertyOf(problem)) ?? []), problem.rule]);
  throw new GraphQLError(problems.length === 1 ? first.rule : `${first.rule} (and ${problems.length - 1} more)`, {
    extensions: {
      code: ErrorCode.BAD_USER_INPUT,
      argument: first.argument,
      validationErrors: [...byProperty].map(([property, constraints]) => ({ property, constraints: [...new Set(constraints)].slice(0, 10) })),
      http: { status: 400 },
    },
  });
}
