import { GraphQLError, GraphQLScalarType } from 'graphql';

/**
 * The scalar with its input errors made client errors. graphql-scalars' Long throws a plain
 * SyntaxError for input such as `{}` or `"1.5"` (it calls `BigInt()` on it), which yoga masks as
 * "Unexpected error."; the client should read what is wrong with its value instead.
 */
export function withClientErrors<T extends GraphQLScalarType>(scalar: T): GraphQLScalarType {
  const config = scalar.toConfig();
  const refuse = (error: unknown, value: string): never => {
    if (error instanceof GraphQLError) throw error;
    throw new GraphQLError(
      `${scalar.name} cannot represent ${value.slice(0, 100)}: ${(error as Error).message}`,
    );
  };
  return new GraphQLScalarType({
    ...config,
    parseValue(value) {
      try {
        return config.parseValue!(value);
      } catch (error) {
        return refuse(error, JSON.stringify(value) ?? String(value));
      }
    },
    parseLiteral(node, variables) {
      try {
        return config.parseLiteral!(node, variables);
      } catch (error) {
        return refuse(error, node.kind);
      }
    },
  });
}
