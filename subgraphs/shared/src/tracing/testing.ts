/** For tests that check what was traced: an in-memory exporter and the processor that feeds it at once. */
export { InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
