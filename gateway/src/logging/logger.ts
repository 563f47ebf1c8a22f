/**
 * The gateway's log: JSON lines through pino, as the other services write them, so that a line
 * written while a request is handled (the runtime's errors and warnings, its debug lines, the
 * gateway's own) carries the request's `trace_id` and `span_id`.
 */
import { Logger, type LogLevel } from '@graphql-hive/logger';
import { PinoLogWriter } from '@graphql-hive/logger/writers/pino';
import { pino, type Logger as PinoLogger } from 'pino';
import { traceLogFields } from '@srcnet/service-kit';

/** The Hive Gateway runtime's logger (its `logging` option), writing to `to` or standard output. */
export function gatewayLogger(level: LogLevel, to?: PinoLogger): Logger {
  return new Logger({
    level,
    writers: [new PinoLogWriter(to ?? pino({ name: 'gateway', level, mixin: traceLogFields }))],
  });
}
