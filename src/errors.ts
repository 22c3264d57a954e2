/**
 * Every error relayq throws or rejects with is a {@link QueueError} (`instanceof QueueError`)
 * with a stable `code` and a `toJSON()`. Branch on `instanceof` or `code`, never on `message`.
 *
 * | class | `name` | `code` |
 * | --- | --- | --- |
 * | `QueueError` (also exported as `JobQueueError`) | `'QueueError'` | given |
 * | `TimeoutError` | `'TimeoutError'` | `'TIMEOUT'` |
 * | `MaxRetriesError` | `'MaxRetriesError'` | `'MAX_RETRIES'` |
 * | `JobNotFoundError` | `'JobNotFoundError'` | `'JOB_NOT_FOUND'` |
 * | `StorageError` | `'StorageError'` | `'STORAGE_ERROR'` |
 * | `JobCancelledError` | `'JobCancelledError'` | `'JOB_CANCELLED'` |
 * | `JobFailedError` | `'JobFailedError'` | `'JOB_FAILED'` |
 * | `InvalidArgumentError` | `'InvalidArgumentError'` | `'INVALID_ARGUMENT'` |
 * | `ResultTTLError` (a `TypeError`) | `'TypeError'` | `'INVALID_ARGUMENT'` |
 * | `QueueClosedError` | `'QueueClosedError'` | `'QUEUE_CLOSED'` |
 * | `SerdeError` | `'SerdeError'` | `'SERDE_ERROR'` |
 *
 * The first seven codes are @platformatic/job-queue's, so code written against it keeps working.
 */

/** Marks instances of classes outside the QueueError hierarchy that count as instances of some of its classes. */
const ALSO = Symbol('relayq.also')

/** The name, message and stack of anything thrown, read without ever throwing. */
export function errorSummary (value: unknown): { name: string, message: string, stack: string | undefined } {
  return { name: read(value, 'name') ?? 'Error', message: safeMessage(value), stack: read(value, 'stack') }
}

/** `value.message` when it is a readable string, else a description of `value`; never throws. */
export function safeMessage (value: unknown): string {
  return read(value, 'message') ?? describeValue(value)
}

/** A string property of `value`, or undefined when absent, not a string or unreadable (a getter that throws). */
export function read (value: unknown, key: string): string | undefined {
  try {
    const v = (value as Record<string, unknown>)?.[key]
    return typeof v === 'string' ? v : undefined
  } catch {
    return undefined
  }
}

/** Short text for any value, never throwing: strings as they are, objects as JSON when possible. */
export function describeValue (value: unknown): string {
  try {
    if (typeof value === 'string') return value
    if (typeof value !== 'object' || value === null) return String(value)
    const json = JSON.stringify(value)
    if (typeof json === 'string' && json !== '{}') return json.length > 200 ? `${json.slice(0, 200)}...` : json
  } catch {}
  try {
    return Object.prototype.toString.call(value)
  } catch {
    return '[object]'
  }
}

/** Base class of relayq's errors. */
export class QueueError extends Error {
  /** Stable, machine-readable identifier of the error kind. */
  readonly code: string

  constructor (message: string, code: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }

  /** `name`, `message`, `code` and `stack`, plus the fields of the subclass. */
  toJSON (): Record<string, unknown> {
    return { name: this.name, message: this.message, code: this.code, stack: this.stack }
  }

  /**
   * The usual prototype check, and also {@link ResultTTLError}, which extends TypeError (the
   * class @platformatic/job-queue throws there) yet is an InvalidArgumentError like every other
   * bad input.
   */
  static override [Symbol.hasInstance]<T>(this: abstract new (...args: any[]) => T, value: unknown): value is T {
    if (Function.prototype[Symbol.hasInstance].call(this, value) as boolean) return true
    try {
      const also = (value as { [ALSO]?: unknown })?.[ALSO]
      return Array.isArray(also) && also.includes(this)
    } catch {
      return false
    }
  }
}

/** `enqueueAndWait` did not receive an outcome within `timeout` ms. */
export class TimeoutError extends QueueError {
  readonly jobId: string
  constructor (jobId: string, timeout: number) {
    super(`Job '${jobId}' timed out after ${timeout}ms`, 'TIMEOUT')
    this.jobId = jobId
  }

  override toJSON (): Record<string, unknown> {
    return { ...super.toJSON(), jobId: this.jobId }
  }
}

/**
 * The job will not run again: its last attempt failed (every `failed` event carries one).
 * `lastError` is that attempt's error, or what `afterExecution` replaced it with; it is also the `cause`.
 */
export class MaxRetriesError extends QueueError {
  readonly jobId: string
  readonly attempts: number
  readonly lastError: Error
  constructor (jobId: string, attempts: number, lastError: Error) {
    super(`Job '${jobId}' failed after ${attempts} attempts: ${safeMessage(lastError)}`, 'MAX_RETRIES', { cause: lastError })
    this.jobId = jobId
    this.attempts = attempts
    this.lastError = lastError
  }

  override toJSON (): Record<string, unknown> {
    return { ...super.toJSON(), jobId: this.jobId, attempts: this.attempts, lastError: errorSummary(this.lastError) }
  }
}

/** No job with this id exists (or its record has expired). */
export class JobNotFoundError extends QueueError {
  readonly jobId: string
  constructor (jobId: string) {
    super(`Job '${jobId}' not found`, 'JOB_NOT_FOUND')
    this.jobId = jobId
  }

  override toJSON (): Record<string, unknown> {
    return { ...super.toJSON(), jobId: this.jobId }
  }
}

/** The storage backend failed (connection lost, I/O error...); `cause` holds the original error. */
export class StorageError extends QueueError {
  constructor (message: string, cause?: unknown) {
    super(message, 'STORAGE_ERROR', cause === undefined ? undefined : { cause })
  }

  override toJSON (): Record<string, unknown> {
    const json = super.toJSON()
    if (this.cause !== undefined) json.cause = errorSummary(this.cause)
    return json
  }
}

/** The job was cancelled before or while it ran. */
export class JobCancelledError extends QueueError {
  readonly jobId: string
  constructor (jobId: string) {
    super(`Job '${jobId}' was cancelled`, 'JOB_CANCELLED')
    this.jobId = jobId
  }

  override toJSON (): Record<string, unknown> {
    return { ...super.toJSON(), jobId: this.jobId }
  }
}

/**
 * The job failed (`enqueueAndWait`). `originalError` is the stored error as JSON text, as
 * @platformatic/job-queue gives it (`JSON.parse(err.originalError)` equals `getStatus(id).error`);
 * `message` is `Job '<id>' failed: <the original message>` and `originalCode` its `code`, if any.
 */
export class JobFailedError extends QueueError {
  readonly jobId: string
  readonly originalError: string
  /** The `code` of the handler's error, when it had a string one. */
  readonly originalCode: string | undefined
  constructor (jobId: string, originalError: string) {
    let message = originalError
    let code: string | undefined
    try {
      const record = JSON.parse(originalError) as unknown
      message = read(record, 'message') ?? message
      code = read(record, 'code')
    } catch {}
    super(`Job '${jobId}' failed: ${message}`, 'JOB_FAILED')
    this.jobId = jobId
    this.originalError = originalError
    this.originalCode = code
  }

  override toJSON (): Record<string, unknown> {
    const json: Record<string, unknown> = { ...super.toJSON(), jobId: this.jobId, originalError: this.originalError }
    if (this.originalCode !== undefined) json.originalCode = this.originalCode
    return json
  }
}

/** An argument or option was invalid; nothing was stored. */
export class InvalidArgumentError extends QueueError {
  constructor (message: string, cause?: unknown) {
    super(message, 'INVALID_ARGUMENT', cause === undefined ? undefined : { cause })
  }
}

/**
 * An invalid `resultTTL` (or `updateResultTTL` ttl). A `TypeError` named `'TypeError'`, as
 * @platformatic/job-queue throws there, with code `INVALID_ARGUMENT`; `instanceof QueueError`
 * and `instanceof InvalidArgumentError` hold too.
 */
export class ResultTTLError extends TypeError {
  readonly code = 'INVALID_ARGUMENT'
  constructor (received: string) {
    super(`resultTTL must be a positive integer in milliseconds, got ${received}`)
  }

  toJSON (): Record<string, unknown> {
    return { name: this.name, message: this.message, code: this.code, stack: this.stack }
  }
}
Object.defineProperty(ResultTTLError.prototype, ALSO, { value: [QueueError, InvalidArgumentError] })

/** The queue (or producer/consumer) was stopped; the call cannot proceed. */
export class QueueClosedError extends QueueError {
  constructor (message = 'The queue is stopped') {
    super(message, 'QUEUE_CLOSED')
  }
}

/**
 * A serde failed to decode stored bytes (a result read by `enqueueAndWait`/`getStatus`/`enqueue`,
 * or a payload read by a consumer) or to encode a result; `cause` is the serde's error.
 */
export class SerdeError extends QueueError {
  constructor (message: string, cause?: unknown) {
    super(message, 'SERDE_ERROR', cause === undefined ? undefined : { cause })
  }
}
