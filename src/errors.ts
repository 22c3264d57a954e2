/**
 * Every error relayq throws or rejects with is a {@link QueueError} with a stable `code`.
 * Branch on `instanceof` or `code`, never on `message`.
 */
export class QueueError extends Error {
  /** Stable, machine-readable identifier of the error kind. */
  readonly code: string

  constructor (message: string, code: string, options?: { cause?: unknown }) {
    super(message, options)
    this.name = new.target.name
    this.code = code
  }
}

/** `enqueueAndWait` did not receive an outcome within `timeout` ms. */
export class TimeoutError extends QueueError {
  readonly jobId: string
  constructor (jobId: string, timeout: number) {
    super(`Job ${JSON.stringify(jobId)} did not finish within ${timeout} ms`, 'ERR_RELAYQ_TIMEOUT')
    this.jobId = jobId
  }
}

/** The job failed: its last attempt threw. `message` and `originalCode` are the handler error's. */
export class JobFailedError extends QueueError {
  readonly jobId: string
  /** The `code` property of the handler's error, when it had one. */
  readonly originalCode: string | undefined
  constructor (jobId: string, message: string, originalCode?: string) {
    super(message, 'ERR_RELAYQ_JOB_FAILED')
    this.jobId = jobId
    this.originalCode = originalCode
  }
}

/** The job was cancelled before or while it ran. */
export class JobCancelledError extends QueueError {
  readonly jobId: string
  constructor (jobId: string) {
    super(`Job ${JSON.stringify(jobId)} was cancelled`, 'ERR_RELAYQ_JOB_CANCELLED')
    this.jobId = jobId
  }
}

/** The job used up its attempts; `cause` is the last attempt's error. */
export class MaxRetriesError extends QueueError {
  readonly jobId: string
  readonly attempts: number
  constructor (jobId: string, attempts: number, cause?: unknown) {
    super(`Job ${JSON.stringify(jobId)} failed after ${attempts} attempts`, 'ERR_RELAYQ_MAX_RETRIES', { cause })
    this.jobId = jobId
    this.attempts = attempts
  }
}

/** No job with this id exists (or its record has expired). */
export class JobNotFoundError extends QueueError {
  readonly jobId: string
  constructor (jobId: string) {
    super(`Job ${JSON.stringify(jobId)} not found`, 'ERR_RELAYQ_JOB_NOT_FOUND')
    this.jobId = jobId
  }
}

/** The storage backend failed (connection lost, I/O error...); `cause` holds the original error. */
export class StorageError extends QueueError {
  constructor (message: string, cause?: unknown) {
    super(message, 'ERR_RELAYQ_STORAGE', { cause })
  }
}

/** An argument or option was invalid; nothing was stored. */
export class InvalidArgumentError extends QueueError {
  constructor (message: string, cause?: unknown) {
    super(message, 'ERR_RELAYQ_INVALID_ARGUMENT', cause === undefined ? undefined : { cause })
  }
}

/** The queue (or producer/consumer) was stopped; the call cannot proceed. */
export class QueueClosedError extends QueueError {
  constructor (message = 'The queue is stopped') {
    super(message, 'ERR_RELAYQ_CLOSED')
  }
}
