import { GraphQLError, Lexer, Source, TokenKind, isUnionType, type GraphQLSchema } from 'graphql';
import type { Plugin } from 'graphql-yoga';

/**
 * What one GraphQL document sent to a subgraph may be. The gateway enforces the product's query
 * limits (depth, aliases, cost); these are wider and only keep a document sent straight to a
 * subgraph from exhausting the parser's stack or the CPU: graphql-js parses recursively, so a few
 * thousand nested braces overflow the stack, which would otherwise be a 500.
 */
export const DOCUMENT_LIMITS = { maxTokens: 20_000, maxNesting: 64 };

const OPEN = new Set<TokenKind>([TokenKind.BRACE_L, TokenKind.BRACKET_L, TokenKind.PAREN_L]);
const CLOSE = new Set<TokenKind>([TokenKind.BRACE_R, TokenKind.BRACKET_R, TokenKind.PAREN_R]);

const refuse = (message: string) =>
  new GraphQLError(message, { extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } } });

/** Counts tokens and bracket nesting with the lexer, which does not recurse, before the parser runs. */
export function checkDocumentLimits(source: string, limits = DOCUMENT_LIMITS): void {
  const lexer = new Lexer(new Source(source));
  let tokens = 0;
  let nesting = 0;
  try {
    for (let token = lexer.advance(); token.kind !== TokenKind.EOF; token = lexer.advance()) {
      if (++tokens > limits.maxTokens) throw refuse(`the document has more than ${limits.maxTokens} tokens`);
      if (OPEN.has(token.kind) && ++nesting > limits.maxNesting)
        throw refuse(
          `the document nests deeper than ${limits.maxNesting} levels (line ${token.line}, column ${token.column})`,
        );
      if (CLOSE.has(token.kind)) nesting--;
    }
  } catch (error) {
    // A syntax error is the parser's to report, with its own message.
    if (error instanceof GraphQLError && error.extensions['code'] === 'BAD_USER_INPUT') throw error;
  }
}

/** The yoga plugin every subgraph runs: document limits, and a 400 for GET variables that are not JSON. */
export function useDocumentLimits(limits = DOCUMENT_LIMITS): Plugin {
  return {
    // Yoga reads the `variables` and `extensions` of a GET with JSON.parse and answers a 500 when
    // they are not JSON; they are the client's mistake.
    onRequestParse({ requestParser, setRequestParser }) {
      if (!requestParser) return;
      setRequestParser(async (request) => {
        try {
          return await requestParser(request);
        } catch (error) {
          if (!(error instanceof SyntaxError)) throw error;
          throw new GraphQLError(`variables and extensions must be JSON: ${error.message}`, {
            extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } },
          });
        }
      });
    },
    onParse({ params }) {
      const source = params.source as string | Source;
      checkDocumentLimits(typeof source === 'string' ? source : source.body, limits);
    },
  };
}

/**
 * Refuses `_entities` representations of no entity type of the subgraph, or without their key,
 * with a message: Apollo's resolver and DataLoader throw plain Errors for them, which yoga masks
 * as "Unexpected error.". Every entity of the project is keyed by its id.
 */
export function checkRepresentations(schema: GraphQLSchema): void {
  const field = schema.getQueryType()?.getFields()['_entities'];
  const resolve = field?.resolve;
  const union = schema.getType('_Entity');
  if (!field || !resolve || !isUnionType(union)) return;
  const entities = new Set(union.getTypes().map((type) => type.name));
  field.resolve = (source, args: { representations?: unknown[] }, context, info) => {
    for (const [index, representation] of (args.representations ?? []).entries()) {
      const { __typename: typename, id } = (representation ?? {}) as { __typename?: unknown; id?: unknown };
      if (typeof typename !== 'string' || !entities.has(typename))
        throw refuse(
          `representations[${index}].__typename: ${JSON.stringify(typename) ?? 'nothing'} is not an entity type of this subgraph`,
        );
      if (typeof id !== 'string') throw refuse(`representations[${index}].id: the key id must be a string`);
    }
    return resolve(source, args, context, info);
  };
}
