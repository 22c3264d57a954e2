import type { Serde } from './serde.ts'
import type { ActiveState, JobState, Storage } from './storage/types.ts'

/**
 * A pino-style logger. relayq logs nothing unless you pass one. With `child`, each component logs
 * through `logger.child({ component, ... })` (`queue`, `producer`, `consumer` with its `workerId`,
 * `reaper` with its `reaperId`).
 */
export interface Logger {
  debug (obj: unknown, msg?: string): void
  info (obj: unknown, msg?: string): void
  warn (obj: unknown, msg?: string): void
  error (obj: unknown, msg?: string): void
  child? (bindings: Record<string, unknown>): Logger
}

/** A job as the handler sees it. */
export interface Job<TPayload = unknown> {
  readonly id: string
  readonly payload: TPayload
  /** Attempts including this one: 1 on the first run. */
  readonly attempts: number
  /** Total attempts allowed for this job. */
  readonly maxAttempts: number
  /** Aborted when the job is cancelled while running, its lease is lost, or shutdown runs out of time. */
  readonly signal: AbortSignal
}

/** Promise style: resolve with the result (or `undefined`). */
export type AsyncJobHandler<TPayload, TResult> = (job: Job<TPayload>) => Promise<TResult> | TResult
/** Callback style. */
export type CallbackJobHandler<TPayload, TResult> = (job: Job<TPayload>, done: (err: Error | null | undefined, result?: TResult) => void) => void
/** A job handler in either style (told apart by arity: two parameters means callback style). */
export type JobHandler<TPayload, TResult> = (job: Job<TPayload>, done: (err: Error | null | undefined, result?: TResult) => void) => Promise<TResult> | TResult | void
// One signature rather than a union of the two styles: TypeScript then infers the parameters of
// `async job => ...` and of `(job, done) => ...` alike (with a union it can infer only one of them).

/** Given to `afterExecution`; it may change `result`, `error` and `ttl` before they are stored. */
export interface AfterExecutionContext<TPayload, TResult> {
  readonly id: string
  readonly payload: TPayload
  /** Attempts including the last one. */
  readonly attempts: number
  readonly maxAttempts: number
  /** Epoch ms of the job's first enqueue. */
  readonly createdAt: number
  readonly status: 'completed' | 'failed'
  result?: TResult
  error?: Error
  /** How long the terminal record is kept, in ms. */
  ttl: number
  /** The worker that ran the last attempt. */
  readonly workerId: string
  /** Epoch ms when the last attempt's handler started. */
  readonly startedAt: number
  /** Epoch ms when it finished. */
  readonly finishedAt: number
  /** `finishedAt - startedAt`, in ms. */
  readonly durationMs: number
}

/** The `afterExecution` hook. */
export type AfterExecutionHook<TPayload, TResult> = (context: AfterExecutionContext<TPayload, TResult>) => void | Promise<void>

/**
 * Retry delay policy. A function gets the attempt that just failed (1-based) and its error and
 * returns the delay in ms.
 */
export type BackoffOption =
  | { type: 'exponential', delay: number, maxDelay?: number, jitter?: number }
  | { type: 'fixed', delay: number, jitter?: number }
  | ((attempt: number, error: Error) => number)

/** Leader election of reapers: only the holder of the lock recovers stalled jobs. */
export interface LeaderElectionOptions {
  /** Elect at all. @default false for a standalone Reaper, true for a Queue's own reaper */
  enabled?: boolean
  /** How long the lock lives without renewal, in ms. @default 30000 */
  lockTTL?: number
  /** How often the leader renews, in ms. @default 10000 */
  renewalInterval?: number
  /** How often a follower tries to take the lock, in ms. @default 5000 */
  acquireRetryInterval?: number
}

/** Options shared by Queue, Producer and Consumer. */
export interface CommonConfig<TPayload, TResult> {
  /** Where jobs live. Required. */
  storage: Storage
  /** Queue namespace; several queues may share one storage. @default 'default' */
  name?: string
  /** Encodes payloads. @default JsonSerde */
  payloadSerde?: Serde<TPayload>
  /** Encodes results. @default JsonSerde */
  resultSerde?: Serde<TResult>
  /** Total attempts per job (first run included). @default 3 */
  maxRetries?: number
  /** How long a finished job's result (or error) is kept, in ms. @default 3600000 */
  resultTTL?: number
  /** pino-style logger. @default silent */
  logger?: Logger
  /**
   * Longest `stop()` takes, in ms, beyond `shutdownTimeout` (which a consumer gives running jobs):
   * storage calls of the teardown still pending then (a frozen server) are given up and reported
   * (`error` event, logger), and `stop()` resolves. @default 5000
   */
  stopTimeout?: number
}

/** Options of a consumer (and of the consuming side of a Queue). */
export interface ConsumerConfig<TPayload, TResult> extends CommonConfig<TPayload, TResult> {
  /** Id of this worker, used for leases. @default a random UUID */
  workerId?: string
  /** Jobs run at once. @default 1 */
  concurrency?: number
  /**
   * Jobs claimed ahead of free slots, held leased by this worker until a slot frees (their leases
   * are renewed like running jobs'; `stop()` hands them back at once). Larger batches per storage
   * call: worth it where each call costs much more than a job (PgStorage: a transaction and a
   * commit per call), at the price of jobs waiting here rather than for another worker.
   * @default 0
   */
  prefetch?: number
  /**
   * The longest one attempt may run, in ms (as in @platformatic/job-queue; a job's own
   * `visibilityTimeout` from `enqueue` overrides it): past it, `job.signal` aborts with a
   * TimeoutError, the slot is freed and the reaper recovers the job as stalled (retried, or failed
   * after `maxStalls` stalls or its last attempt); a later outcome of the handler is ignored. Also
   * the lease length: the lease is renewed every third of it while the handler runs, so the jobs
   * of a worker that died are recovered within it. @default 30000
   */
  visibilityTimeout?: number
  /**
   * Longest wait of one blocking claim when the queue is empty, in **seconds** (fractions allowed),
   * as in @platformatic/job-queue. @default 5
   */
  blockTimeout?: number
  /** Delay between attempts. @default { type: 'exponential', delay: 1000, maxDelay: 60000, jitter: 0.5 } */
  backoff?: BackoffOption
  /** How long `stop()` waits for running jobs before aborting and handing them back, in ms. @default 10000 */
  shutdownTimeout?: number
  /** Runs after the last attempt, before the terminal state is stored. */
  afterExecution?: AfterExecutionHook<TPayload, TResult>
  /**
   * Accepted for compatibility with @platformatic/job-queue, where it bounds the life of a
   * worker's processing list. relayq keeps none: leases expire instead (see `visibilityTimeout`).
   */
  processingQueueTTL?: number
}

/** Options of a Reaper. */
export interface ReaperConfig {
  storage: Storage
  /** Accepted for compatibility with @platformatic/job-queue; a reaper never decodes payloads. */
  payloadSerde?: Serde<unknown>
  /** Queue namespace. @default 'default' */
  name?: string
  /**
   * The queue's run-time limit (the consumers' `visibilityTimeout`, which the consumers enforce):
   * it paces the scans, every `visibilityTimeout / 2` ms unless `interval` is set, so that a job
   * past its limit or with an expired lease is recovered within one interval. @default 30000
   */
  visibilityTimeout?: number
  /** Ms between scans. @default visibilityTimeout / 2 */
  interval?: number
  /** Stalls a job may survive; one more fails it. @default 1 */
  maxStalls?: number
  /** Without it (or with `enabled: false`) the reaper scans at once and holds no lock. @default { enabled: false } */
  leaderElection?: LeaderElectionOptions
  logger?: Logger
  /** Longest `stop()` takes, in ms: storage calls still pending then are given up and reported. @default 5000 */
  stopTimeout?: number
}

/** Options of a Queue: producer and consumer in one. */
export interface QueueConfig<TPayload, TResult> extends ConsumerConfig<TPayload, TResult> {
  /** Run a Reaper (leader-elected) alongside the consumer. @default true */
  reaper?: boolean
  /** Stalls a job may survive before it fails, for the embedded reaper. @default 1 */
  maxStalls?: number
  /** Ms between the embedded reaper's scans (a job past its run-time limit is recovered within it). @default visibilityTimeout / 2 */
  interval?: number
  /**
   * Election of the embedded reaper among the queue instances (on a lock of their own: a standalone
   * Reaper elects apart). @default { enabled: true }
   */
  leaderElection?: LeaderElectionOptions
}

/** Per-job options of `enqueue`. */
export interface EnqueueOptions {
  /** Total attempts for this job. @default the queue's `maxRetries` */
  maxAttempts?: number
  /** Result TTL for this job, in ms. @default the queue's `resultTTL` */
  resultTTL?: number
  /** Ms before the job may run. @default 0 */
  delay?: number
  /**
   * The longest one attempt of this job may run, in ms (>= 10): this job's own
   * `visibilityTimeout`, for a job that needs longer (or shorter) than the consumer's. Stored
   * with the job; enforced by the consumer (issue 10 item 3).
   * @default the consumer's `visibilityTimeout`
   */
  visibilityTimeout?: number
}

/** Per-call options of `enqueueAndWait`. */
export interface EnqueueAndWaitOptions extends EnqueueOptions {
  /** Ms to wait for the outcome before rejecting with TimeoutError. @default 30000 */
  timeout?: number
}

/** What `enqueue` did. */
export type EnqueueResult<TResult> =
  | { status: 'queued' }
  | { status: 'duplicate', existingState: ActiveState | 'failed' | 'cancelled' }
  | { status: 'completed', result: TResult }

/** What `cancel` did. */
export interface CancelResult { status: 'cancelled' | 'not_found' | 'processing' | 'completed' }

/** A job's status. */
export interface MessageStatus<TResult> {
  id: string
  state: JobState
  createdAt: number
  attempts: number
  result?: TResult
  error?: SerializedError
}

/** What `updateResultTTL` did. */
export interface UpdateResultTTLResult { status: 'updated' | 'not_found' | 'not_terminal' | 'missing_payload' }

/**
 * How a job's final error is stored: the output of its `toJSON()` when it has one (exactly),
 * else its `message`, `name`, `code` (when a string) and `stack`.
 */
export interface SerializedError {
  message: string
  name?: string
  code?: string
  stack?: string
  [key: string]: unknown
}

/** Typed events of a Queue (a Producer or Consumer emits the subset that concerns it). */
export interface QueueEvents<TResult> {
  started: []
  stopped: []
  error: [error: Error]
  enqueued: [id: string]
  completed: [id: string, result: TResult]
  failed: [id: string, error: Error]
  failing: [id: string, error: Error, attempt: number]
  requeued: [id: string]
  cancelled: [id: string]
  stalled: [id: string]
}
