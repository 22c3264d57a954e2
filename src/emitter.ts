import { EventEmitter } from 'node:events'
import type { Logger, QueueEvents } from './types.ts'

/** The typed emitter behind Queue, Producer, Consumer and Reaper. */
export class Emitter<TEvents extends Record<keyof TEvents, unknown[]>> extends EventEmitter<TEvents> {}

type Target<TResult> = Emitter<QueueEvents<TResult>>

/**
 * Emits `error` only when somebody listens: an unheard `error` event would throw and take the
 * process down for something the queue already handles (it retries, the reaper recovers).
 */
export function reportError<TResult> (target: Target<TResult>, logger: Logger, error: Error, msg: string): void {
  logger.error({ err: error }, msg)
  if (target.listenerCount('error') > 0) target.emit('error', error)
}
