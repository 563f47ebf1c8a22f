import { parse, stringify, YAMLParseError } from 'yaml';

/** A body that could not be read as JSON or YAML; the message says where. */
export class DocumentSyntaxError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'DocumentSyntaxError';
  }
}

export type DocumentFormat = 'json' | 'yaml';

/**
 * The format a Content-Type or Accept value names. YAML unless JSON is named: the IVOA draft
 * makes YAML the default when no type is given, and a YAML reader also reads JSON, so a body sent
 * as text/plain (as fetch does for a string) is read either way.
 */
export function formatOf(mediaType: string | undefined): DocumentFormat {
  return mediaType && /json/i.test(mediaType) ? 'json' : 'yaml';
}

export const MEDIA_TYPES: Record<DocumentFormat, string> = {
  json: 'application/json',
  yaml: 'application/yaml',
};

export function parseDocument(body: string, format: DocumentFormat): unknown {
  if (format === 'json') {
    try {
      return JSON.parse(body);
    } catch (error) {
      throw new DocumentSyntaxError(`the body is not valid JSON: ${(error as Error).message}`);
    }
  }
  try {
    // YAML 1.2 core schema, so `NO` stays a string, as JSON would read it. An unknown tag such as
    // `!!js/function` leaves its value a plain string (validation then judges it) and is not
    // worth a process warning on every hostile request.
    return parse(body, { schema: 'core', maxAliasCount: 100, uniqueKeys: true, logLevel: 'error' });
  } catch (error) {
    const where =
      error instanceof YAMLParseError
        ? ` at line ${error.linePos?.[0].line}, column ${error.linePos?.[0].col}`
        : '';
    throw new DocumentSyntaxError(
      `the body is not valid YAML${where}: ${(error as Error).message.split('\n')[0]}`,
    );
  }
}

export function serializeDocument(value: unknown, format: DocumentFormat): string {
  return format === 'json' ? JSON.stringify(value) : stringify(value, { lineWidth: 0 });
}
